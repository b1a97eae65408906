"""The baseline of benches/bulk_update.rs: the same update as a user would
write it today in Python with simple-salesforce's Bulk API 2.0 helpers --
read every contact's Id with a bulk2 query, then a bulk2 update of every
record -- against the same simulator.

It logs in as benches/python/sim_login.py does.

Usage: write_baseline.py SIM_URL CLIENT_ID CLIENT_SECRET TITLE
Prints one line of JSON: records read, records updated and failed, seconds,
and the process's peak RSS in MB.
"""
import csv
import io
import json
import sys
import time

import sim_login


def peak_rss_mb():
    # VmHWM, not getrusage: ru_maxrss survives fork+exec, so it would
    # report the Rust bench's peak (it holds the simulator's org).
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


sim, client_id, client_secret, title = sys.argv[1:5]
started = time.monotonic()
sf = sim_login.connect(sim, client_id, client_secret)
ids = []
for page in sf.bulk2.Contact.query("SELECT Id FROM Contact WHERE LastName != null",
                                   max_records=50000):
    ids.extend(row["Id"] for row in csv.DictReader(io.StringIO(page)))
results = sf.bulk2.Contact.update(records=[{"Id": i, "Title": title} for i in ids])
processed = sum(int(r["numberRecordsProcessed"]) for r in results)
failed = sum(int(r["numberRecordsFailed"]) for r in results)
print(json.dumps({"read": len(ids), "processed": processed, "failed": failed,
                  "seconds": time.monotonic() - started,
                  "peak_rss_mb": peak_rss_mb()}))
