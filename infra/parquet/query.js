// Runs one SQL query with DuckDB (an independent Parquet reader) and prints the rows as JSON (BigInts as strings).
// Usage: node query.js "SELECT ... FROM 'file.parquet'"
const { DuckDBInstance } = require('@duckdb/node-api');

(async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const reader = await connection.runAndReadAll(process.argv[2]);
  const rows = reader.getRowObjectsJson();
  process.stdout.write(JSON.stringify(rows) + '\n');
})().catch((error) => {
  process.stderr.write(String(error && error.message || error) + '\n');
  process.exit(1);
});
