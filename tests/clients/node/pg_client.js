// Node `pg` against sfsql: a parameterised query (extended protocol), a
// named prepared statement run twice, the simple protocol. Exits non-zero on
// any failure.
const assert = require("node:assert/strict");
const { Client } = require("pg");

async function main(port) {
  const client = new Client({ host: "127.0.0.1", port, user: "demo", password: "demo", database: "demo" });
  await client.connect();
  try {
    const params = await client.query(
      "select id, email from sandbox.contact where email like $1 order by email limit 3", ["f%"]);
    assert.equal(params.rows.length, 3);
    assert.ok(params.rows.every((r) => r.email.startsWith("f")), JSON.stringify(params.rows));
    assert.deepEqual(params.fields.map((f) => f.name), ["id", "email"]);
    for (const prefix of ["g%", "h%"]) {
      const named = await client.query({
        name: "by_prefix",
        text: "select count(*) as n from sandbox.contact where email like $1",
        values: [prefix],
      });
      assert.ok(Number(named.rows[0].n) >= 0, JSON.stringify(named.rows));
    }
    const simple = await client.query("select count(*) as n from sandbox.account");
    assert.ok(Number(simple.rows[0].n) > 0);
    await assert.rejects(client.query("select nope from sandbox.account"), (e) => e.code && e.code !== "XX000");
    console.log(`node-pg ok rows=${params.rows.length} accounts=${simple.rows[0].n}`);
  } finally {
    await client.end();
  }
}

main(Number(process.argv[2])).catch((e) => {
  console.error(e);
  process.exit(1);
});
