"""The synthetic credit world's tables: names, columns and what each one means.

This is the contract between the data generator, the Feast feature repo, training, gates and
serving. Tables are parquet files in `<workspace>/data/<world>/` (default world name `world`).
All timestamps are `datetime64[us, UTC]` (Feast's DuckDB materialize rejects ns+tz).

Model features are the application's own fields plus the bureau and transaction feature views.
Protected attributes live in their own table and are never model features. The oracle table
holds the ground truth for every application (declined ones included) and is read only by
benchmarks.
"""

from __future__ import annotations

# --- keys and timestamps --------------------------------------------------------------
APPLICANT_ID = "applicant_id"  # pseudonymised, e.g. "c3f1a9..." (stable per applicant)
APPLICATION_ID = "application_id"
EVENT_TS = "event_timestamp"  # feature tables: when the value became true
CREATED_TS = "created_timestamp"  # feature tables: when the row was written (tie-break)
APPLICATION_TS = "application_timestamp"

# --- tables ---------------------------------------------------------------------------
APPLICATIONS = "applications"
BUREAU = "bureau_snapshots"
TRANSACTIONS = "transactions_daily"
OUTCOMES = "outcomes"
PROTECTED = "protected_attributes"
ORACLE = "oracle"  # benchmarks only
TABLES = (APPLICATIONS, BUREAU, TRANSACTIONS, OUTCOMES, PROTECTED, ORACLE)

# applications.parquet: one row per application.
#   application_id, applicant_id, application_timestamp, plus the application's own fields
#   below, plus bank_decision ("approved"/"declined", the bank's historical decision).
APPLICATION_NUMERIC = ["loan_amount", "loan_term_months", "employment_years"]
APPLICATION_CATEGORICAL = ["home_ownership", "loan_purpose"]
APPLICATION_FIELDS = APPLICATION_NUMERIC + APPLICATION_CATEGORICAL
BANK_DECISION = "bank_decision"
APPROVED = "approved"
DECLINED = "declined"

# bureau_snapshots.parquet: monthly credit-bureau snapshots per applicant.
#   applicant_id, event_timestamp, created_timestamp, + raw columns + derived features.
BUREAU_RAW = [
    "total_debt",
    "credit_card_balance",
    "credit_limit",
    "on_time_payments",
    "total_payments",
]
BUREAU_FEATURES = [
    "annual_income",
    "debt_to_income_ratio",  # total_debt / annual_income
    "credit_utilization",  # credit_card_balance / credit_limit
    "payment_score",  # on_time_payments / total_payments * 100
    "num_open_accounts",
    "num_delinquencies_24m",
    "credit_history_months",
]

# transactions_daily.parquet: daily transaction aggregates per applicant.
#   applicant_id, event_timestamp, created_timestamp, + features.
TRANSACTION_FEATURES = [
    "txn_count_30d",
    "avg_txn_amount_30d",
    "online_spend_share_30d",
    "cash_withdrawal_share_30d",
    "balance_volatility_30d",
]

# outcomes.parquet: only approved applications whose window has closed by the data's as-of
# date. One row per application:
#   application_id, default_12m (0/1, NaN if not yet matured), default_observed_timestamp,
#   early_delinquency_3m (30+ dpd within 3 months, 0/1, NaN if not yet observed),
#   early_observed_timestamp.
LABEL = "default_12m"
EARLY_LABEL = "early_delinquency_3m"
LABEL_OBSERVED_TS = "default_observed_timestamp"
EARLY_OBSERVED_TS = "early_observed_timestamp"

# protected_attributes.parquet: applicant_id + these. Never model features.
PROTECTED_ATTRIBUTES = ["age_band", "sex", "marital_status"]

# oracle.parquet: application_id, true_pd, true_default_12m, true_early_delinquency_3m,
# scenario (name active at that application), for every application incl. declined ones.
ORACLE_TRUE_DEFAULT = "true_default_12m"  # what the 12-month label would say, declined included
ORACLE_TRUE_EARLY = "true_early_delinquency_3m"
ORACLE_COLUMNS = ["true_pd", ORACLE_TRUE_DEFAULT, ORACLE_TRUE_EARLY, "scenario"]

# Feast names (feature_repo/ defines them; these constants keep code and repo in sync).
FEAST_ENTITY = "applicant"
FEAST_BUREAU_VIEW = "bureau_features"
FEAST_TRANSACTION_VIEW = "transaction_features"
FEAST_FEATURE_SERVICE = "credit_risk_v1"
BUREAU_TTL_DAYS = 45  # monthly snapshots; a snapshot older than ~1.5 months is stale
TRANSACTION_TTL_DAYS = 7  # daily aggregates

MODEL_NUMERIC_FEATURES = APPLICATION_NUMERIC + BUREAU_FEATURES + TRANSACTION_FEATURES
MODEL_CATEGORICAL_FEATURES = APPLICATION_CATEGORICAL
MODEL_FEATURES = MODEL_NUMERIC_FEATURES + MODEL_CATEGORICAL_FEATURES
