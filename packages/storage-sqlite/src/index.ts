// Public API of @apimeter/storage-sqlite. Every export is listed by name.
export { type SqliteDatabase, sqliteStorage, type SqliteStorageOptions, type SqliteThread } from './sqlite-storage.js'
