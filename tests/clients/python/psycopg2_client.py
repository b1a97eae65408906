"""psycopg2 against sfsql: client-side parameter interpolation over the
simple protocol, a transaction block, a server error. Exits non-zero on any
failure."""
import sys

import psycopg2

port = int(sys.argv[1])
conn = psycopg2.connect(host="127.0.0.1", port=port, user="demo", password="demo",
                        dbname="demo")
cur = conn.cursor()
cur.execute("select id, email from sandbox.contact where email like %s order by email limit %s",
            ("b%", 4))
rows = cur.fetchall()
assert len(rows) == 4 and all(r[1].startswith("b") for r in rows), rows
assert [d.name for d in cur.description] == ["id", "email"], cur.description
conn.commit()
try:
    cur.execute("select no_such_column from sandbox.contact")
    raise SystemExit("expected an error")
except psycopg2.Error as e:
    assert e.pgcode and e.pgcode != "XX000", (e.pgcode, e)
    conn.rollback()
cur.execute("select count(*) from sandbox.account")
(accounts,) = cur.fetchone()
assert accounts > 0, accounts
conn.close()
print(f"psycopg2 ok rows={len(rows)} accounts={accounts}")
