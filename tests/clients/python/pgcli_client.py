"""pgcli against sfsql: its command line (-l, -c with SQL and with the
backslash commands of pgspecial, which send their own catalog queries) and
the completion metadata pgcli loads at start (PGExecute). Exits non-zero on
any failure."""
import os
import subprocess
import sys
import tempfile

from pgcli.pgexecute import PGExecute

port = int(sys.argv[1])
pgcli = os.path.join(os.path.dirname(sys.executable), "pgcli")
home = tempfile.mkdtemp()
env = dict(os.environ, PGPASSWORD="demo", HOME=home, XDG_CONFIG_HOME=home, PAGER="cat")


def run(*args):
    out = subprocess.run(
        [pgcli, "-h", "127.0.0.1", "-p", str(port), "-U", "demo", "-d", "demo",
         "--less-chatty", *args],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    assert "error" not in out.stdout.lower(), (args, out.stdout)
    return out.stdout


databases = run("-l")
assert "sfsql" in databases, databases
rows = run("-c", "select id, email from sandbox.contact order by email limit 3")
assert rows.count("@") == 3 and "SELECT 3" in rows, rows
dt = run("-c", "\\dt sandbox.*")
assert "contact" in dt and "account" in dt, dt
d = run("-c", "\\d sandbox.contact")
assert "wm_nps_score__c" in d and "email" in d, d
dn = run("-c", "\\dn")
assert "production" in dn and "reports" in dn, dn

# What pgcli's completion refresher loads on start.
ex = PGExecute(database="demo", user="demo", password="demo",
               host="127.0.0.1", port=port, dsn=None)
schemata = ex.schemata()
assert {"sandbox", "production", "reports", "cron"} <= set(schemata), schemata
tables = set(ex.tables())
assert ("sandbox", "contact") in tables and ("reports", "nps_score") in tables, tables
views = set(ex.views())
assert ("cron", "job_run_details") in views, views
columns = {(s, t, c) for s, t, c, *_ in ex.table_columns()}
assert ("sandbox", "contact", "email") in columns, len(columns)
view_columns = {(s, t, c) for s, t, c, *_ in ex.view_columns()}
assert ("cron", "job_run_details", "status") in view_columns, len(view_columns)
# Foreign keys (reference fields): the refresher loads them after the
# columns; had this query failed, pgcli would load no completion at all.
fks = {(fk.childschema, fk.childtable, fk.childcolumn, fk.parentschema, fk.parenttable, fk.parentcolumn)
       for fk in ex.foreignkeys()}
assert ("sandbox", "contact", "accountid", "sandbox", "account", "id") in fks, sorted(fks)[:5]
assert ("production", "campaignmember", "leadid", "production", "lead", "id") in fks, len(fks)
types = list(ex.datatypes())
assert all(len(t) == 2 for t in types), types[:3]
assert "sfsql" in ex.databases()
assert "public" in ex.search_path()
# Function names with their argument and return types (pgcli casts oid
# vectors to regtype[] and return types to regtype::text).
functions = list(ex.functions())
signatures = {(f.func_name, tuple(f.arg_types or ()), f.return_type) for f in functions}
assert ("lower", ("text",), "text") in signatures, [s for s in signatures if s[0] == "lower"]
assert ("lower", ("anyrange",), "anyelement") in signatures
assert ("date_trunc", ("text", "timestamp with time zone"), "timestamp with time zone") in signatures
assert not [f for f in functions if f.return_type.isdigit() or f.return_type.startswith("oid(")]
print(f"pgcli ok tables={len(tables)} columns={len(columns)} foreignkeys={len(fks)} functions={len(functions)}")
