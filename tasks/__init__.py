"""The steps of the srq-hpn deploy, one module per concern (see deploy.py)."""
