// The PostgreSQL JDBC driver against sfsql, as DBeaver, Tableau and Metabase
// use it: connect, DatabaseMetaData.getSchemas/getTables/getColumns, a
// prepared query. Run as a single-file program: java -cp postgresql.jar
// JdbcClient.java PORT. Exits non-zero on any failure.
import java.sql.*;
import java.util.*;

public class JdbcClient {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/demo";
        try (Connection conn = DriverManager.getConnection(url, "demo", "demo")) {
            DatabaseMetaData meta = conn.getMetaData();
            Set<String> schemas = new TreeSet<>();
            try (ResultSet rs = meta.getSchemas()) {
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
            }
            check(schemas.containsAll(List.of("sandbox", "production", "reports")), "schemas " + schemas);
            Set<String> tables = new TreeSet<>();
            try (ResultSet rs = meta.getTables(null, "sandbox", "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            check(tables.containsAll(List.of("contact", "account")), "tables " + tables);
            Map<String, String> columns = new TreeMap<>();
            try (ResultSet rs = meta.getColumns(null, "sandbox", "contact", "%")) {
                while (rs.next()) columns.put(rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME"));
            }
            check(columns.containsKey("email") && columns.containsKey("id"), "columns " + columns);
            // getPrimaryKeys: what DBeaver and Metabase ask to know a row's key.
            List<String> keys = new ArrayList<>();
            try (ResultSet rs = meta.getPrimaryKeys(null, "sandbox", "contact")) {
                while (rs.next()) {
                    keys.add(rs.getString("COLUMN_NAME") + "/" + rs.getInt("KEY_SEQ") + "/" + rs.getString("PK_NAME"));
                }
            }
            check(keys.equals(List.of("id/1/contact_pkey")), "primary keys " + keys);
            int rows = 0;
            try (PreparedStatement ps = conn.prepareStatement(
                    "select id, email from sandbox.contact where email like ? order by email limit 4")) {
                // Run it enough times that the driver switches to a server-side prepared statement.
                for (int i = 0; i < 6; i++) {
                    ps.setString(1, "a%");
                    rows = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            check(rs.getString("email").startsWith("a"), "prefix");
                            rows++;
                        }
                    }
                    check(rows == 4, "rows " + rows);
                }
            }
            System.out.println("jdbc ok schemas=" + schemas.size() + " tables=" + tables.size()
                + " columns=" + columns.size() + " pk=" + keys + " email_type=" + columns.get("email") + " rows=" + rows);
        }
    }
}
