"""SQLAlchemy's inspector (schemas, tables) and
pandas.read_sql against sfsql through psycopg 3. Exits non-zero on any
failure."""
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
# inspector.get_columns is not covered yet: its reflection query binds a
# table oid parameter that sfsql cannot decode (issue 7 note).
frame = pd.read_sql(
    sa.text("select id, email from sandbox.contact where email like :p order by email limit 5"),
    engine, params={"p": "e%"})
assert len(frame) == 5 and list(frame.columns) == ["id", "email"], frame
assert frame["email"].str.startswith("e").all(), frame
print(f"sqlalchemy ok schemas={len(schemas)} tables={len(tables)} frame={len(frame)}")
