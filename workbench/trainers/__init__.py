"""Built-in trainers: LightGBM and any scikit-learn estimator, on tables, with no code.

They run as the trainer process of a supervised run (`python -m workbench.trainers`)
and report through the same tracking API as user scripts.
"""
