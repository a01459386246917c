// Public API of @apimeter/storage-sqlite. Every export is listed by name.
export { type SqliteDatabase, sqliteStorage, type SqliteStorageOptions } from './sqlite-storage.js'
