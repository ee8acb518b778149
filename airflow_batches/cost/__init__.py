"""What a batch costs: the price table, the plan before sending (dry run, budget) and the cost of the usage.

No Airflow import here, like ``airflow_batches.api``.
"""
