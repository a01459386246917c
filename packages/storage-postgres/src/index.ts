// Public API of @apimeter/storage-postgres. Every export is listed by name.
export { type PostgresPool, postgresStorage, type PostgresStorageOptions } from './postgres-storage.js'
