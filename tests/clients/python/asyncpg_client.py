"""asyncpg against sfsql: named prepared statements, binary result format,
typed parameters. Exits non-zero on any failure."""
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
    finally:
        await conn.close()
    print(f"asyncpg ok rows={len(rows)} count={count}")


asyncio.run(main(int(sys.argv[1])))
