/*
 * maildir.h - the local Maildir next hop (DESIGN section 5): the embedded
 * default so that a fresh install delivers somewhere with no mail cluster
 * behind it.
 *
 * Threads: a struct maildir has one data-path owner (one dataplane lcore,
 * or one thread standing for it): maildir_begin/append/commit/abort/poll
 * are called by that owner only, never block, never allocate and take no
 * lock. It has no threads of its own: the file work (open in tmp/, write,
 * fsync, rename into new/, fsync new/) runs in steps on the one worker
 * pool (dataplane/workers), submitted on the owner's core; a step comes
 * back through that core's workers_poll() (which wakes the core when it
 * sleeps) and the completions then wait for maildir_poll(). Several
 * instances (one per lcore) may share one Maildir directory: file names
 * are unique per instance.
 *
 * Memory: everything (job slots, body chunk pool, completion FIFO) is
 * allocated by maildir_create(); the body bytes in flight are bounded by
 * max_chunks * chunk_size, and each message by max_message_size.
 *
 * Shutdown: destroy the worker pool first (it hands every step back),
 * then the maildir (it unlinks the tmp/ files of messages not finished).
 *
 * A message:
 *   j = maildir_begin(md, &received, tag);    // -EAGAIN: answer 451
 *   maildir_append(md, j, bytes, len) ...      // short take: retry later
 *   maildir_commit(md, j) or maildir_abort(md, j)
 *   maildir_poll(md, out, n) -> {job j, tag, status 0 or -errno}
 * Only a completion with status 0 means the message is in new/ and both the
 * file and the directory were fsync'd: answer 250 then, not before.
 */
#ifndef MXG_MAILDIR_H
#define MXG_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dataplane/workers/workers.h"

struct maildir;

struct maildir_config {
	const char *path;	   /* Maildir root; it and cur/ new/ tmp/ are
				      created (0700) when missing */
	const char *hostname;	   /* for file names and Received "by";
				      NULL = gethostname() */
	uint32_t instance;	   /* distinguishes instances (lcore id) in
				      file names */
	struct worker_pool *pool;  /* the file work runs here (required) */
	uint16_t core;		   /* the owner's core in the pool */
	uint32_t max_jobs;	   /* messages in flight (64) */
	uint32_t chunk_size;	   /* body chunk octets (65536) */
	uint32_t max_chunks;	   /* chunk pool (256): body memory bound */
	uint64_t max_message_size; /* octets per message, 0 = no limit */
	bool keep_crlf;		   /* store CRLF; default LF (Maildir readers
				      expect local line ends) */
};

/* Fills cfg with the defaults above (path NULL). */
void maildir_config_defaults(struct maildir_config *cfg);

/* What the Received: trace field records (RFC 5321 4.4, RFC 5322 3.6.7).
 * Strings are copied by maildir_begin() (truncated to 255 octets; control
 * characters become '?', so a hostile HELO cannot add header lines). */
struct maildir_received {
	const char *client_addr; /* "192.0.2.1" or "IPv6:2001:db8::1"
				    (RFC 5321 4.1.3; required) */
	const char *client_name; /* reverse DNS name, NULL = "unknown" */
	const char *helo;	 /* HELO/EHLO argument, NULL = none */
	const char *listener;	 /* listener name, e.g. "mx" */
	const char *session_id;	 /* our session/queue id */
	const char *protocol;	 /* "ESMTP", "ESMTPS", "ESMTPA"... (RFC 3848) */
	const char *tls;	 /* "(using TLSv1.3 with cipher ...)" comment
				    line, NULL/"" = none */
	const char *sender;	 /* envelope sender for Return-Path, NULL =
				    no Return-Path; "" = "<>" */
	const char *recipient;	 /* "for <...>" (one recipient), NULL = omit */
	int64_t time;		 /* Unix seconds for the date; 0 = now */
};

struct maildir_completion {
	int32_t job;	/* the id maildir_begin() returned */
	int32_t status; /* 0 = delivered and durable; -errno otherwise;
			   -ECANCELED after maildir_abort() */
	uint64_t tag;	/* the caller's tag from maildir_begin() */
	uint64_t size;	/* octets written (headers included) */
	char name[256]; /* file name in new/ ("" when not delivered) */
};

struct maildir_stats {
	uint64_t delivered;   /* messages in new/ */
	uint64_t failed;      /* I/O errors */
	uint64_t aborted;     /* maildir_abort() */
	uint64_t fsyncs;      /* fsync() calls that succeeded */
	uint64_t bytes;	      /* octets written */
	uint64_t busy;	      /* maildir_begin() refused: no job slot */
	uint64_t chunk_short; /* maildir_append() short: chunk pool empty */
};

/* Creates the directories and allocates everything. Returns NULL with
 * *err = -errno on failure. Main thread, at start. */
struct maildir *maildir_create(const struct maildir_config *cfg, int *err);

/* Unlinks the tmp/ files of messages not finished and frees everything.
 * The pool must hold no step of md (workers_destroy() first, or every
 * completion polled). NULL is a no-op. */
void maildir_destroy(struct maildir *md);

/* Starts a message. Returns the job id (>= 0), -EAGAIN when all job slots
 * are busy (the caller answers 451 4.3.0), -EINVAL for bad arguments. */
int maildir_begin(struct maildir *md, const struct maildir_received *rcv,
		  uint64_t tag);

/* Body octets as the SMTP engine emits them (CRLF, dot-stuffed); they are
 * copied. Stored un-stuffed, with LF line ends unless keep_crlf. Returns
 * how many were taken: fewer than len when the chunk pool is empty (try
 * again on a later poll iteration); -EFBIG past max_message_size (nothing
 * taken: abort the job); -EINVAL for a bad job. */
ssize_t maildir_append(struct maildir *md, int job, const void *buf,
		       size_t len);

/* The body is complete: write, fsync, rename into new/, fsync new/. The
 * completion follows on maildir_poll(). 0 or -EINVAL. */
int maildir_commit(struct maildir *md, int job);

/* Abandons a message: its tmp/ file is unlinked; a completion with
 * -ECANCELED follows (the job id is reusable only after it). */
int maildir_abort(struct maildir *md, int job);

/* Up to n completions, without blocking. Each frees its job id. Also sends
 * the steps that waited (maildir_hold, a full job ring): call it on every
 * poll-loop iteration after workers_poll(). */
unsigned maildir_poll(struct maildir *md, struct maildir_completion *out,
		      unsigned n);

/* Pauses (true) or resumes sending steps to the pool: the body waits in
 * its chunks; steps already out finish. Resumed at the next maildir_poll().
 * For tests and for draining; any thread. */
void maildir_hold(struct maildir *md, bool hold);

/* True while a step is out, waits to go out, or a completion waits for
 * maildir_poll(). Owner only. */
bool maildir_busy(const struct maildir *md);

/* Counters, summed from atomics; any thread. */
void maildir_stats(const struct maildir *md, struct maildir_stats *out);

/* Formats a Received: trace field (and Return-Path when sender is set)
 * into buf, lines ending in "\n" (or CRLF when crlf); by_host is our
 * name. Returns the length, or -ENOSPC. Exposed for tests. */
int maildir_format_received(const struct maildir_received *rcv,
			    const char *by_host, bool crlf, char *buf,
			    size_t len);

#endif /* MXG_MAILDIR_H */
