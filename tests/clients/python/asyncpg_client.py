"""asyncpg against sfsql: named prepared statements, binary result format,
typed parameters of every type sfsql exposes (date, timestamptz, numeric,
bool, float8, text, int4, int8; time and bytea results). Exits non-zero on any failure."""
import asyncio
import sys


async def main(port: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="demo",
                                 password="demo", database="demo")
    try:
        # asyncpg always prepares and asks for binary results.
        stmt = await conn.prepare(
            "select id, email from sandbox.contact where email like $1 order by email limit $2")
        rows = await stmt.fetch("c%", 3)
        assert len(rows) == 3 and all(r["email"].startswith("c") for r in rows), rows
        again = await stmt.fetch("d%", 2)
        assert len(again) == 2 and all(r["email"].startswith("d") for r in again), again
        count = await conn.fetchval("select count(*) from sandbox.contact")
        assert isinstance(count, int) and count > 0, count
        typed = await conn.fetchrow("select 1::int4 as i, 2.5::float8 as f, true as b, 'x'::text as t")
        assert (typed["i"], typed["f"], typed["b"], typed["t"]) == (1, 2.5, True, "x"), typed
        await every_type(conn)
    finally:
        await conn.close()
    print(f"asyncpg ok rows={len(rows)} count={count}")


async def every_type(conn) -> None:
    """Each type sfsql exposes read in binary, equal to its text form, and
    bound back as a parameter (asyncpg sends parameters in binary too)."""
    import datetime
    import decimal

    c = await conn.fetchrow(
        "select id, birthdate, createddate, email, wm_nps_score__c, hasoptedoutofemail, "
        "cast(birthdate as varchar) as bd, cast(createddate as varchar) as cd "
        "from sandbox.contact where birthdate is not null and wm_nps_score__c is not null "
        "order by id limit 1")
    assert isinstance(c["birthdate"], datetime.date), c
    assert c["birthdate"].isoformat() == c["bd"], c
    assert isinstance(c["createddate"], datetime.datetime) and c["createddate"].tzinfo, c
    assert c["createddate"].strftime("%Y-%m-%dT%H:%M:%SZ") == c["cd"], c
    found = await conn.fetch(
        "select id from sandbox.contact where birthdate = $1 and createddate = $2 "
        "and email = $3 and wm_nps_score__c = $4 and hasoptedoutofemail = $5",
        c["birthdate"], c["createddate"], c["email"], c["wm_nps_score__c"],
        c["hasoptedoutofemail"])
    assert [r["id"] for r in found] == [c["id"]], (c, found)

    a = await conn.fetchrow(
        "select id, wm_discount__c, annualrevenue, numberofemployees, wm_page_views__c, "
        "wm_opens_at__c, cast(wm_discount__c as varchar) as d, "
        "cast(wm_opens_at__c as varchar) as o from sandbox.account "
        "where wm_discount__c is not null and annualrevenue is not null "
        "and numberofemployees is not null and wm_page_views__c is not null "
        "and wm_opens_at__c is not null order by id limit 1")
    assert isinstance(a["wm_discount__c"], decimal.Decimal), a
    assert str(a["wm_discount__c"]) == a["d"], a
    assert isinstance(a["annualrevenue"], decimal.Decimal), a
    assert isinstance(a["numberofemployees"], int) and isinstance(a["wm_page_views__c"], int), a
    assert isinstance(a["wm_opens_at__c"], datetime.time), a
    assert a["wm_opens_at__c"].isoformat() == a["o"], a
    found = await conn.fetch(
        "select id from sandbox.account where wm_discount__c = $1 and annualrevenue = $2 "
        "and numberofemployees = $3 and wm_page_views__c = $4",
        a["wm_discount__c"], a["annualrevenue"], a["numberofemployees"],
        a["wm_page_views__c"])
    assert [r["id"] for r in found] == [a["id"]], (a, found)

    b = await conn.fetchrow("select id, body from sandbox.attachment order by id limit 1")
    assert isinstance(b["body"], bytes) and b["body"], b
    hexed = await conn.fetchval(
        "select encode(body, 'hex') from sandbox.attachment where id = $1", b["id"])
    assert hexed == b["body"].hex(), (hexed, b)


asyncio.run(main(int(sys.argv[1])))
