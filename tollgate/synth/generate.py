"""Seeded sample data: 12 monthly raw batches per dataset, with real-life signal, drift and defects.

    python -m tollgate.synth.generate                    # both datasets into data/raw/<dataset>/YYYY-MM.csv
    python -m tollgate.synth.generate --dataset churn --rows 1000000 --months 1 --out /tmp/big

The generator knows the two sample datasets' columns by design: it plays the role of the systems
that export raw data, not of the pipeline (which learns every column from the spec).
"""

from __future__ import annotations

import argparse
import string
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from tollgate.config.settings import Settings

FIRST_MONTH = "2025-11"
DEFAULT_MONTHS = 12
DEFAULT_ROWS = {"churn": 2000, "security": 5000}


@dataclass(frozen=True)
class Defects:
    """Share of cells or rows hit by each defect a real export has."""

    duplicate_rows: float = 0.012
    messy_case: float = 0.02
    missing_cells: float = 0.01
    bad_numbers: float = 0.003
    numbers_as_text: float = 0.02


def month_names(first: str, count: int) -> list[str]:
    return [str(p) for p in pd.period_range(first, periods=count, freq="M")]


# --------------------------------------------------------------------------------------------
# churn


def _churn_rows(rng: np.random.Generator, rows: int, drift: float) -> pd.DataFrame:
    """One month of customers; ``drift`` in [0, 1] shifts prices, fiber uptake and churn.

    From the middle of the year the world changes who churns, not just how many (concept drift): an
    onboarding programme halves new customers' excess churn while a competitor's fibre offer pulls away
    fibre customers on month-to-month contracts. A model trained before it ranks the wrong customers first;
    one retrained on the newer months ranks better where the retention team acts."""
    letters = np.array(list(string.ascii_uppercase))
    ids = [
        f"{n:04d}-{''.join(code)}"
        for n, code in zip(rng.integers(1000, 9999, rows), rng.choice(letters, size=(rows, 5)), strict=False)
    ]
    senior = (rng.random(rows) < 0.16).astype(int)
    partner = rng.random(rows) < 0.48
    dependents = rng.random(rows) < np.where(partner, 0.45, 0.12)

    new_customer = rng.random(rows) < 0.12
    tenure = np.where(
        new_customer,
        rng.integers(0, 3, rows),
        np.minimum(72, np.floor(rng.exponential(26, rows)) + 1),
    ).astype(int)

    contract_draw = rng.random(rows)
    long_tenure = np.clip(tenure / 72, 0, 1)
    p_two_year = 0.05 + 0.45 * long_tenure
    p_one_year = 0.12 + 0.18 * long_tenure
    contract = np.where(
        contract_draw < p_two_year,
        "Two year",
        np.where(contract_draw < p_two_year + p_one_year, "One year", "Month-to-month"),
    )

    phone = rng.random(rows) < 0.9
    multiple = np.where(phone, np.where(rng.random(rows) < 0.45, "Yes", "No"), "No phone service")
    internet_draw = rng.random(rows)
    p_fiber = 0.40 + 0.08 * drift
    internet = np.where(internet_draw < p_fiber, "Fiber optic", np.where(internet_draw < p_fiber + 0.36, "DSL", "No"))
    has_internet = internet != "No"
    addon_rates = {
        "online_security": 0.35,
        "online_backup": 0.42,
        "device_protection": 0.42,
        "tech_support": 0.35,
        "streaming_tv": 0.48,
        "streaming_movies": 0.48,
    }
    addons = {
        name: np.where(has_internet, np.where(rng.random(rows) < rate, "Yes", "No"), "No internet service")
        for name, rate in addon_rates.items()
    }
    service_count = (multiple == "Yes").astype(int) + phone.astype(int)
    for values in addons.values():
        service_count += (values == "Yes").astype(int)

    paperless = rng.random(rows) < 0.59
    payment = rng.choice(
        ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"],
        size=rows,
        p=[0.34, 0.23, 0.22, 0.21],
    )
    monthly = (
        18.0
        + 27.0 * (internet == "DSL")
        + 52.0 * (internet == "Fiber optic")
        + 5.5 * service_count
        + rng.normal(0, 3.0, rows)
    ) * (1.0 + 0.04 * drift)
    monthly = np.round(np.clip(monthly, 18.25, None), 2)
    total = np.round(monthly * tenure * rng.uniform(0.93, 1.04, rows), 2)

    logit = (
        -2.15
        + 0.4 * (contract == "Month-to-month")
        + 0.2 * (contract == "One year")
        + 2.6 * (tenure < 3)
        + 0.9 * ((tenure >= 3) & (tenure < 12))
        - 0.012 * tenure
        + 0.75 * (internet == "Fiber optic")
        - 0.3 * service_count
        + 0.45 * (payment == "Electronic check")
        + 0.3 * senior
        + 0.2 * paperless
        - 0.25 * partner
        + 0.004 * (monthly - 65)
        + 0.3 * drift
    )
    change = np.clip((drift - 0.4) / 0.6, 0.0, 1.0)  # 0 until ~40 % of the months, then up to 1
    logit = (
        logit
        - 1.6 * change * (tenure < 3)
        + 1.8 * change * ((internet == "Fiber optic") & (contract == "Month-to-month"))
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))

    yes_no = np.array(["No", "Yes"])
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "gender": rng.choice(["Female", "Male"], size=rows),
            "senior_citizen": senior,
            "partner": yes_no[partner.astype(int)],
            "dependents": yes_no[dependents.astype(int)],
            "tenure_months": tenure,
            "phone_service": yes_no[phone.astype(int)],
            "multiple_lines": multiple,
            "internet_service": internet,
            **addons,
            "contract": contract,
            "paperless_billing": yes_no[paperless.astype(int)],
            "payment_method": payment,
            "monthly_charges": monthly,
            "total_charges": total,
            "churn": yes_no[churned.astype(int)],
        }
    )
    return frame.astype(object)


CHURN_DEFECTS = {
    "categorical": [
        "gender",
        "partner",
        "dependents",
        "phone_service",
        "contract",
        "paperless_billing",
        "internet_service",
        "churn",
    ],
    "missing": ["partner", "payment_method", "monthly_charges", "online_security"],
    "bad_numbers": {"monthly_charges": [-29.85, -5.0, 99999.0]},
    "as_text": ["total_charges", "monthly_charges"],
    "id": "customer_id",
}


def _blank_new_customer_totals(frame: pd.DataFrame) -> None:
    """Billing systems leave total charges blank until a first full month has been billed."""
    frame.loc[frame["tenure_months"] == 0, "total_charges"] = " "


# --------------------------------------------------------------------------------------------
# security


ATTACK_KINDS = ("brute_force", "port_scan", "exfiltration")


def _security_rows(rng: np.random.Generator, rows: int, drift: float, month: str) -> pd.DataFrame:
    """One month of sessions: normal traffic with a daily rhythm plus three attack kinds."""
    attack_rate = 0.045 + 0.015 * drift
    kind = np.where(
        rng.random(rows) < attack_rate,
        rng.choice(ATTACK_KINDS, size=rows, p=[0.4, 0.35, 0.25]),
        "normal",
    )
    # Three in ten attacks are "low and slow": weaker signal that overlaps normal traffic.
    stealthy = rng.random(rows) < 0.3

    hour = np.clip(np.round(rng.normal(13, 3.2, rows)), 0, 23).astype(int)
    failed = rng.poisson(0.25, rows)
    success = rng.poisson(1.4, rows)
    ports = 1 + rng.poisson(0.6, rows)
    dst_ips = 1 + rng.poisson(0.9, rows)
    bytes_out = np.round(rng.lognormal(8.5, 1.3, rows))
    bytes_in = np.round(rng.lognormal(10.5, 1.4, rows) * (1 + 0.1 * drift))
    duration = np.round(rng.lognormal(4.0, 1.1, rows), 1)
    requests = 1 + rng.poisson(12, rows) + np.round(rng.lognormal(1.5, 1.0, rows)).astype(int)
    protocol = rng.choice(["tcp", "udp", "icmp"], size=rows, p=[0.86, 0.11, 0.03])
    service = rng.choice(
        ["https", "http", "dns", "ssh", "smb", "rdp", "ftp"],
        size=rows,
        p=[0.45, 0.18, 0.12, 0.1, 0.07, 0.05, 0.03],
    )
    agent = rng.choice(
        ["chrome", "firefox", "safari", "edge", "curl", "python-requests", "openssh", "other"],
        size=rows,
        p=[0.38, 0.16, 0.12, 0.12, 0.05, 0.05, 0.08, 0.04],
    )

    brute = kind == "brute_force"
    strength = np.where(stealthy, 0.04, 1.0)
    failed = np.where(brute, np.round(rng.integers(15, 400, rows) * strength) + 2, failed)
    success = np.where(brute, rng.binomial(1, 0.15, rows), success)
    service = np.where(brute & ~stealthy, rng.choice(["ssh", "rdp"], size=rows, p=[0.7, 0.3]), service)
    agent = np.where(brute & ~stealthy, rng.choice(["openssh", "python-requests", "other"], size=rows), agent)

    scan = kind == "port_scan"
    horizontal = rng.random(rows) < 0.4
    ports = np.where(scan & ~horizontal, np.round(rng.integers(40, 3000, rows) * strength) + 3, ports)
    dst_ips = np.where(scan & horizontal, np.round(rng.integers(30, 800, rows) * strength) + 3, dst_ips)
    bytes_out = np.where(scan & ~stealthy, np.round(rng.lognormal(6.5, 1.0, rows)), bytes_out)
    duration = np.where(scan & ~stealthy, np.round(rng.lognormal(3.0, 1.0, rows), 1), duration)
    requests = np.where(scan, np.maximum(ports, dst_ips) + rng.poisson(5, rows), requests)
    agent = np.where(scan & ~stealthy, rng.choice(["other", "curl", "python-requests"], size=rows), agent)

    exfil = kind == "exfiltration"
    bytes_out = np.where(exfil, np.round(rng.lognormal(np.where(stealthy, 12.0, 16.5), 1.0, rows)), bytes_out)
    hour = np.where(exfil & (rng.random(rows) < 0.6), rng.integers(0, 6, rows), hour)
    duration = np.where(exfil & ~stealthy, np.round(rng.lognormal(6.5, 0.8, rows), 1), duration)

    # Benign look-alikes a SOC sees every day: forgotten passwords, IT vulnerability scanners,
    # nightly backups. They keep the problem honest: signal, not a lookup.
    look_alike = (kind == "normal") & (rng.random(rows) < 0.05)
    which = rng.integers(0, 3, rows)
    failed = np.where(look_alike & (which == 0), rng.integers(3, 40, rows), failed)
    ports = np.where(look_alike & (which == 1), rng.integers(10, 600, rows), ports)
    requests = np.where(look_alike & (which == 1), np.maximum(requests, ports), requests)
    bytes_out = np.where(look_alike & (which == 2), np.round(rng.lognormal(14.5, 1.5, rows)), bytes_out)
    hour = np.where(look_alike & (which == 2), rng.integers(0, 5, rows), hour)

    octets = rng.integers(1, 255, size=(rows, 2))
    internal = [f"10.{a}.{b}.{c}" for (a, b), c in zip(octets, rng.integers(1, 255, rows), strict=False)]
    external = [
        f"{a}.{b}.{c}.{d}"
        for (a, b), c, d in zip(octets, rng.integers(1, 255, rows), rng.integers(1, 255, rows), strict=False)
    ]
    src_ip = np.where(kind == "normal", internal, external)

    frame = pd.DataFrame(
        {
            "session_id": [f"{month}-S{i:07d}" for i in range(rows)],
            "src_ip": src_ip,
            "failed_logins": failed.astype(int),
            "successful_logins": success.astype(int),
            "unique_ports": ports.astype(int),
            "unique_dst_ips": dst_ips.astype(int),
            "bytes_out": bytes_out.astype(np.int64),
            "bytes_in": bytes_in.astype(np.int64),
            "duration_s": duration,
            "requests": requests.astype(int),
            "login_hour": hour,
            "protocol": protocol,
            "service": service,
            "user_agent_family": agent,
            "is_attack": (kind != "normal").astype(int),
        }
    )
    return frame.astype(object)


SECURITY_DEFECTS = {
    "categorical": ["protocol", "service", "user_agent_family"],
    "missing": ["user_agent_family", "duration_s", "bytes_in"],
    "bad_numbers": {"bytes_out": [-1.0, -512.0], "login_hour": [25, 99]},
    "as_text": ["bytes_out", "bytes_in"],
    "id": "session_id",
}


# --------------------------------------------------------------------------------------------
# defects shared by both exports


def _messy_case(value: object, rng: np.random.Generator) -> object:
    text = str(value)
    variant = rng.integers(0, 4)
    return [f" {text.lower()}", text.upper(), f"{text} ", f"  {text.lower()}  "][variant]


def _number_as_text(value: object) -> object:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return f"{number:,.2f}" if number >= 1000 else f" {number} "


def inject_defects(frame: pd.DataFrame, rules: dict, rng: np.random.Generator, defects: Defects) -> pd.DataFrame:
    """Add the defects real exports have, at the rates in ``defects``."""
    rows = len(frame)
    for column in rules["categorical"]:
        hit = rng.random(rows) < defects.messy_case
        frame.loc[hit, column] = [_messy_case(v, rng) for v in frame.loc[hit, column]]
    for column in rules["missing"]:
        frame.loc[rng.random(rows) < defects.missing_cells, column] = None
    for column, bad_values in rules["bad_numbers"].items():
        hit = rng.random(rows) < defects.bad_numbers
        frame.loc[hit, column] = rng.choice(bad_values, size=int(hit.sum()))
    for column in rules["as_text"]:
        hit = rng.random(rows) < defects.numbers_as_text
        frame.loc[hit, column] = [_number_as_text(v) for v in frame.loc[hit, column]]

    duplicate_count = int(rows * defects.duplicate_rows)
    duplicates = frame.iloc[rng.choice(rows, size=duplicate_count, replace=False)].copy()
    # Half the duplicates are re-exports with an updated value; later rows win in cleaning.
    positions = np.flatnonzero(rng.random(duplicate_count) < 0.5)
    if len(positions) and rules["categorical"]:
        column = rules["categorical"][0]
        duplicates.iloc[positions, duplicates.columns.get_loc(column)] = frame[column].iloc[0]
    combined = pd.concat([frame, duplicates], ignore_index=True)
    return combined.sample(frac=1.0, random_state=int(rng.integers(0, 2**31))).reset_index(drop=True)


def make_batch(
    dataset: str,
    month: str,
    month_index: int,
    months: int,
    rows: int,
    seed: int,
    defects: Defects = Defects(),
    jitter: bool = True,
) -> pd.DataFrame:
    """One raw monthly batch, reproducible from (seed, dataset, month).

    Months vary in size by ±5 % unless ``jitter`` is off (benchmarks want exact sizes); duplicated
    rows come on top.
    """
    rng = np.random.default_rng([seed, month_index, 0 if dataset == "churn" else 1])
    drift = month_index / max(months - 1, 1)
    size = int(rows * rng.uniform(0.95, 1.05)) if jitter else rows
    if dataset == "churn":
        frame = _churn_rows(rng, size, drift)
        frame = inject_defects(frame, CHURN_DEFECTS, rng, defects)
        _blank_new_customer_totals(frame)
        return frame
    if dataset == "security":
        frame = _security_rows(rng, size, drift, month)
        return inject_defects(frame, SECURITY_DEFECTS, rng, defects)
    raise ValueError(f"unknown dataset '{dataset}': choose churn or security")


def generate(
    out_dir: Path,
    datasets: list[str],
    months: int = DEFAULT_MONTHS,
    rows: int | None = None,
    seed: int = 7,
    first_month: str = FIRST_MONTH,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Write ``out_dir/<dataset>/YYYY-MM.csv``; existing files are kept unless ``overwrite``."""
    names = month_names(first_month, months)
    jobs = [(dataset, index, month) for dataset in datasets for index, month in enumerate(names)]
    written = []
    for dataset, index, month in tqdm(
        jobs, desc="generating batches", unit="batch", disable=not progress, file=sys.stderr
    ):
        path = out_dir / dataset / f"{month}.csv"
        if path.exists() and not overwrite:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        batch = make_batch(dataset, month, index, months, rows or DEFAULT_ROWS[dataset], seed)
        temporary = path.with_suffix(".csv.partial")
        batch.to_csv(temporary, index=False)
        temporary.replace(path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["churn", "security", "all"], default="all")
    parser.add_argument(
        "--out", type=Path, default=Settings().raw_data_dir, help="default: TOLLGATE_RAW_DATA_DIR, else data/raw"
    )
    parser.add_argument("--months", type=int, default=DEFAULT_MONTHS)
    parser.add_argument("--rows", type=int, default=None, help="rows per month (default 2,000 churn / 5,000 security)")
    parser.add_argument("--first-month", default=FIRST_MONTH)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--overwrite", action="store_true", help="replace batches that already exist")
    args = parser.parse_args(argv)
    datasets = ["churn", "security"] if args.dataset == "all" else [args.dataset]
    written = generate(args.out, datasets, args.months, args.rows, args.seed, args.first_month, args.overwrite)
    print(f"wrote {len(written)} batch(es) under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
