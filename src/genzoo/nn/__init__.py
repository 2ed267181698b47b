"""Pieces shared by the models' networks."""
