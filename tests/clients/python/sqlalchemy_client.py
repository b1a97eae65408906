"""SQLAlchemy's inspector (schemas, tables, columns with types, keys and
comments), a table loaded with autoload_with, and pandas.read_sql against
sfsql through psycopg 3. Exits non-zero on any failure."""
import sys

import pandas as pd
import sqlalchemy as sa

port = int(sys.argv[1])
engine = sa.create_engine(f"postgresql+psycopg://demo:demo@127.0.0.1:{port}/demo")
inspector = sa.inspect(engine)
schemas = inspector.get_schema_names()
assert {"sandbox", "production", "reports"} <= set(schemas), schemas
tables = inspector.get_table_names(schema="sandbox")
assert {"contact", "account"} <= set(tables), tables
# Columns with their types, as BI tools built on SQLAlchemy reflect them.
columns = {c["name"]: c for c in inspector.get_columns("contact", schema="sandbox")}
types = {name: type(c["type"]).__name__ for name, c in columns.items()}
expected = {
    "id": "TEXT", "email": "TEXT", "hasoptedoutofemail": "BOOLEAN",
    "birthdate": "DATE", "createddate": "TIMESTAMP", "wm_nps_score__c": "DOUBLE_PRECISION",
}
assert expected.items() <= types.items(), types
assert columns["createddate"]["type"].timezone, columns["createddate"]
assert all(c["default"] is None and not c["autoincrement"] for c in columns.values()), columns
account = {c["name"]: type(c["type"]).__name__ for c in inspector.get_columns("account", schema="sandbox")}
assert account["numberofemployees"] == "INTEGER" and account["annualrevenue"] == "NUMERIC", account
assert account["wm_opens_at__c"] == "TIME", account
report = [c["name"] for c in inspector.get_columns("nps_score", schema="reports")]
assert "account_email" in report, report
# Keys and comments: Id is each sObject table's primary key; Salesforce's
# labels are the comments.
pk = inspector.get_pk_constraint("contact", schema="sandbox")
assert pk["constrained_columns"] == ["id"] and pk["name"] == "contact_pkey", pk
assert inspector.get_table_comment("contact", schema="sandbox")["text"] == "Contact"
assert columns["email"]["comment"] == "Email", columns["email"]
assert inspector.get_indexes("contact", schema="sandbox") == []
assert inspector.get_unique_constraints("contact", schema="sandbox") == []
# Reference fields with one target are foreign keys to that table's id;
# polymorphic ones (Task.WhoId: Contact or Lead) are not.
fks = {tuple(f["constrained_columns"]): f for f in inspector.get_foreign_keys("contact", schema="sandbox")}
account_fk = fks[("accountid",)]
assert (account_fk["referred_schema"], account_fk["referred_table"], account_fk["referred_columns"]) == (
    "sandbox", "account", ["id"]), account_fk
assert account_fk["name"] == "contact_accountid_fkey", account_fk
assert fks[("ownerid",)]["referred_table"] == "user", fks
inspector.get_columns("task", schema="sandbox")
task_fks = [f["constrained_columns"] for f in inspector.get_foreign_keys("task", schema="sandbox")]
assert ["whoid"] not in task_fks and ["whatid"] not in task_fks, task_fks
# A Table loaded from the catalog, as ORMs and BI tools on SQLAlchemy do,
# then queried through its columns.
contact = sa.Table("contact", sa.MetaData(), schema="sandbox", autoload_with=engine)
assert [c.name for c in contact.primary_key] == ["id"], contact.primary_key
assert [fk.target_fullname for fk in contact.c.accountid.foreign_keys] == ["sandbox.account.id"]
with engine.connect() as conn:
    rows = conn.execute(
        sa.select(contact.c.id, contact.c.email).where(contact.c.email.like("a%")).limit(3)
    ).fetchall()
assert len(rows) == 3 and all(r.email.startswith("a") for r in rows), rows
frame = pd.read_sql(
    sa.text("select id, email from sandbox.contact where email like :p order by email limit 5"),
    engine, params={"p": "e%"})
assert len(frame) == 5 and list(frame.columns) == ["id", "email"], frame
assert frame["email"].str.startswith("e").all(), frame
print(f"sqlalchemy ok schemas={len(schemas)} tables={len(tables)} columns={len(columns)} "
      f"pk={pk['constrained_columns']} fks={len(fks)} autoload={len(contact.c)} frame={len(frame)}")
