export { fromUrl, PersistPostgres, type PersistPostgresOptions } from "./persist-postgres.js";
export { SCHEMA_VERSION, type SignalTableSql, signalTableSql } from "./signal-table.js";
