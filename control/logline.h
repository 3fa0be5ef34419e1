/*
 * logline.h - one log line from key=value to what the log file holds
 * (docs/logging.md): key=value as written (a repeated key dropped) or one
 * JSON object, and the level of its event for log.level.
 *
 * Pure functions on strings: no state, no allocation, any thread. The
 * logger thread (control/logger.c) calls them on every line it writes.
 */
#ifndef MXG_CONTROL_LOGLINE_H
#define MXG_CONTROL_LOGLINE_H

#include <stddef.h>

enum logline_format { LOGLINE_KV, LOGLINE_JSON };

/* log.level: a line is written when its event's level is at or below the
 * configured one (ERROR < WARN < INFO < DEBUG). */
enum logline_level {
	LOGLINE_ERROR,
	LOGLINE_WARN,
	LOGLINE_INFO,
	LOGLINE_DEBUG,
};

/* "kv"/"json" and "error"/"warn"/"info"/"debug" to their enum; -1 for
 * another name. */
int logline_format_parse(const char *name);
int logline_level_parse(const char *name);

/* The level of line's event (its event= key): error for event=error,
 * warn for backend_error and push_failed, info for every other event
 * (and for a line without event). */
enum logline_level logline_level_of(const char *line);

/* Renders the key=value line (no LF) into out as fmt says, with a final
 * NUL and no LF. A key that repeats an earlier key of the line is dropped
 * (the first wins). JSON: one object, keys in the line's order, quotes
 * around values removed, strings escaped (RFC 8259 7; bytes that are not
 * UTF-8 become U+FFFD), values of the keys docs/logging.md lists as
 * numeric written as JSON numbers when they are one. Returns the length
 * written, or -1 when out is too small (6 * strlen(line) + 64 octets
 * always suffice); out is then undefined. */
int logline_render(const char *line, enum logline_format fmt, char *out,
		   size_t outlen);

#endif /* MXG_CONTROL_LOGLINE_H */
