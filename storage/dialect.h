/*
 * SQL fragments that no common text expresses on both backends (storage/sql.h
 * lists the subset that is common): JSON functions. Each comes as a pair,
 * SQL_LITE_<name> for SQLite and SQL_PG_<name> for PostgreSQL, so that a
 * statement is written once, as a macro of its dialect D, and expanded twice:
 *
 *     #define LIST_SQL(D) "SELECT ... WHERE user_id IN (" D##_JSON_TEXTS("?2") ")"
 *     sql_stmt *st = storage_stmt2(db, LIST_SQL(SQL_LITE), LIST_SQL(SQL_PG));
 *
 * Arguments are SQL text (string literals): a parameter such as "?2", or a
 * column. A JSON document is TEXT in both schemas; PostgreSQL reads it
 * after a cast to json, which refuses malformed JSON as SQLite's JSON
 * functions do.
 */
#ifndef AD_STORAGE_DIALECT_H
#define AD_STORAGE_DIALECT_H

/* The strings of the JSON array `p` (TEXT), one row each, one column: the
 * operand of IN (...). SQLite's json_each is a table; PostgreSQL's json_each
 * takes objects only, and its array form has another name. */
#define SQL_LITE_JSON_TEXTS(p) "SELECT value FROM json_each(" p ")"
#define SQL_PG_JSON_TEXTS(p) "SELECT json_array_elements_text(CAST(" p " AS json))"

/* The number at top-level key `key` (a literal name) of the JSON object in
 * `doc`: NULL when absent. SQLite's json_extract returns the number's own
 * type; PostgreSQL's ->> returns text, cast here to the type SQLite's
 * comparisons and aggregates would see: BIGINT for integers (ids), DOUBLE
 * PRECISION for reals (scores). */
#define SQL_LITE_JSON_INT(doc, key) "json_extract(" doc ", '$." key "')"
#define SQL_PG_JSON_INT(doc, key) "CAST(CAST(" doc " AS json) ->> '" key "' AS BIGINT)"
#define SQL_LITE_JSON_REAL(doc, key) "json_extract(" doc ", '$." key "')"
#define SQL_PG_JSON_REAL(doc, key) "CAST(CAST(" doc " AS json) ->> '" key "' AS DOUBLE PRECISION)"

#endif
