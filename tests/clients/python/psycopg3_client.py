"""psycopg 3 against sfsql: extended protocol with server-side parameters,
a prepared statement, binary results. Exits non-zero on any failure."""
import sys

import psycopg

port = int(sys.argv[1])
with psycopg.connect(host="127.0.0.1", port=port, user="demo", password="demo",
                     dbname="demo", autocommit=True) as conn:
    # Server-side binding: psycopg 3 sends $1/$2 with the extended protocol.
    rows = conn.execute(
        "select id, email from sandbox.contact where email like %s order by email limit %s",
        ("a%", 3)).fetchall()
    assert len(rows) == 3, rows
    assert all(r[1].startswith("a") for r in rows), rows
    # prepare=True forces a named server-side prepared statement.
    for _ in range(2):
        n = conn.execute("select count(*) from sandbox.contact where email like %s",
                         ("a%",), prepare=True).fetchone()[0]
        assert n >= 3, n
    # Binary result format.
    with conn.cursor(binary=True) as cur:
        cur.execute("select count(*) as n, max(email) as m from sandbox.contact")
        count, top = cur.fetchone()
        assert isinstance(count, int) and count > 0, count
        assert isinstance(top, str), top
    # A transaction block, as psycopg opens one without autocommit.
    conn.autocommit = False
    conn.execute("select 1").fetchone()
    conn.rollback()
print(f"psycopg3 ok rows={len(rows)} count={count}")
