"""Asisten Bansos domain core: the only package that touches the database."""
