"""psqlODBC through unixODBC (pyodbc) against sfsql, as Power BI and Excel
use it: SQLTables, SQLColumns and a parameterised query. Exits non-zero on
any failure."""
import sys

import pyodbc

port = int(sys.argv[1])
conn = pyodbc.connect(
    "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;"
    f"PORT={port};DATABASE=demo;UID=demo;PWD=demo",
    autocommit=True)
cur = conn.cursor()
tables = {row.table_name for row in cur.tables(schema="sandbox", tableType="TABLE")}
assert {"contact", "account"} <= tables, tables
columns = {row.column_name: row.type_name for row in cur.columns(table="contact", schema="sandbox")}
assert "email" in columns and "id" in columns, columns
cur.execute("select id, email from sandbox.contact where email like ? order by email limit 3", "a%")
rows = cur.fetchall()
assert len(rows) == 3 and all(r.email.startswith("a") for r in rows), rows
conn.close()
print(f"odbc ok tables={len(tables)} columns={len(columns)} rows={len(rows)}")
