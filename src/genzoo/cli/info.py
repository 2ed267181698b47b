"""``genzoo models`` and ``genzoo data``: what is installed and where the data live."""

from __future__ import annotations

import argparse


def _cmd_models(_: argparse.Namespace) -> int:
    from genzoo.core.registry import list_models

    rows = [(s.name, s.family, s.summary, s.paper) for s in list_models()]
    width = [max(len(r[i]) for r in rows + [("name", "family", "", "")]) for i in range(2)]
    print(f"{'name':<{width[0]}}  {'family':<{width[1]}}  summary [paper]")
    for name, family, summary, paper in rows:
        print(f"{name:<{width[0]}}  {family:<{width[1]}}  {summary} [{paper}]")
    return 0


def _cmd_data(_: argparse.Namespace) -> int:
    from genzoo.data import data_dir, describe_datasets

    print(f"data directory: {data_dir()} (set GENZOO_DATA to change it)")
    for name, text in describe_datasets():
        print(f"  {name:<20} {text}")
    return 0
