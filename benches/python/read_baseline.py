"""The baseline of benches/read_paths.rs: the join as a user would write it
today in Python with simple-salesforce -- query_all of every contact, then a
pandas merge with the report -- against the same simulator.

The one change for the simulator: it speaks http on localhost, and
simple-salesforce always builds https URLs, so a requests adapter rewrites
the scheme. Everything else is the library as users run it.

Usage: read_baseline.py SIM_URL CLIENT_ID CLIENT_SECRET REPORT_CSV
Prints one line of JSON: rows of the merge, contacts fetched, seconds.
"""
import json
import sys
import time

import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce


class HttpForLocalhost(HTTPAdapter):
    def send(self, request, **kwargs):
        request.url = request.url.replace("https://", "http://", 1)
        return super().send(request, **kwargs)


sim, client_id, client_secret, report_csv = sys.argv[1:5]
started = time.monotonic()
token = requests.post(
    f"{sim}/production/services/oauth2/token",
    data={"grant_type": "client_credentials", "client_id": client_id,
          "client_secret": client_secret},
    timeout=60,
).json()
session = requests.Session()
session.mount("https://", HttpForLocalhost())
sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                session=session, version="62.0")
result = sf.query_all("SELECT Id, Email FROM Contact")
contacts = pd.DataFrame.from_records(result["records"], columns=["Id", "Email"])
report = pd.read_csv(report_csv)
contacts["key"] = contacts["Email"].str.lower()
report["key"] = report["account_email"].str.lower()
merged = report.merge(contacts, on="key", how="inner")
print(json.dumps({"rows": len(merged), "fetched": len(contacts),
                  "seconds": time.monotonic() - started}))
