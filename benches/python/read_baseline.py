"""The baseline of benches/read_paths.rs: the join as a user would write it
today in Python with simple-salesforce -- query_all of every contact, then a
pandas merge with the report -- against the same simulator.

It logs in as benches/python/sim_login.py does; everything else is the
library as users run it.

Usage: read_baseline.py SIM_URL CLIENT_ID CLIENT_SECRET REPORT_CSV
Prints one line of JSON: rows of the merge, contacts fetched, seconds.
"""
import json
import sys
import time

import pandas as pd
import sim_login


sim, client_id, client_secret, report_csv = sys.argv[1:5]
started = time.monotonic()
sf = sim_login.connect(sim, client_id, client_secret)
result = sf.query_all("SELECT Id, Email FROM Contact")
contacts = pd.DataFrame.from_records(result["records"], columns=["Id", "Email"])
report = pd.read_csv(report_csv)
contacts["key"] = contacts["Email"].str.lower()
report["key"] = report["account_email"].str.lower()
merged = report.merge(contacts, on="key", how="inner")
print(json.dumps({"rows": len(merged), "fetched": len(contacts),
                  "seconds": time.monotonic() - started}))
