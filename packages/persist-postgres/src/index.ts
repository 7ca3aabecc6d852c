export { fromUrl, PersistPostgres, type PersistPostgresOptions } from "./persist-postgres.js";
export { SCHEMA_VERSION } from "./signal-table.js";
