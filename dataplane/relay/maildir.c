/*
 * maildir.c - the local Maildir next hop: data-path side (job slots, body
 * chunks, the steps it hands to the worker pool) and the file I/O those
 * steps run on dataplane/workers threads.
 *
 * A message is written in steps: a step is one worker_job that opens the
 * file in tmp/ (first step), writes the full body chunks queued since the
 * previous step, and, last, flushes, fsyncs, renames into new/ and fsyncs
 * new/ (commit) or closes and unlinks (abort). A message has at most one
 * step out at a time, so its file work runs in order on whichever worker
 * takes it; the step's done() on the owning core frees its chunks and
 * sends the next step. The pool wakes the core when a step comes back.
 *
 * Ownership: everything but a job's file state belongs to the owning core
 * (job slots, chunk lists, the free-chunk stack, the completion FIFO). A
 * job's file state (fd, name, error, un-stuffing state, bytes written) and
 * the chunks of its step belong to the step while it is out; the pool's
 * rings order the hand-over both ways. Statistics are relaxed atomics.
 *
 * Promises: the data-path calls never block, never allocate and take no
 * lock. A completion with status 0 is posted only after fsync(file),
 * rename(tmp -> new) and fsync(new/) all succeeded (the Maildir protocol,
 * cr.yp.to/proto/maildir.html, plus the directory fsync that makes the
 * rename durable). maildir_abort() cancels the step out (the pool hands it
 * back through drop(), its work run or not) and a last step unlinks the
 * tmp/ file if there is one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"
#include "dataplane/fmt.h"

/* ------------------------------------------------------------ types */

#define FIELD_MAX 256

enum job_state { JOB_FREE = 0, JOB_OPEN, JOB_CLOSED };

enum step_finish { FIN_NONE = 0, FIN_COMMIT, FIN_ABORT };

struct job {
	struct worker_job step; /* the pool's job; one step out at a time */
	struct maildir *md;
	/* data path (the owning core) */
	enum job_state state;
	int32_t cur_chunk; /* -1: none */
	uint32_t cur_len;
	uint64_t size; /* body octets appended */
	uint64_t tag;
	int32_t q_head, q_tail; /* full chunks for the next step (-1) */
	enum step_finish finish; /* commit or abort asked */
	bool begun;		 /* a step opened (or tried) the file */
	bool finish_sent;	 /* the last step is out or back */
	bool step_out;
	bool stalled; /* counted in md->stalled: step again from poll */
	int32_t status; /* of the completion */
	/* the step's orders: written before submit, read by the worker */
	bool s_open;
	int32_t s_chunks; /* list through md->chunk_next, -1 = none */
	enum step_finish s_finish;
	/* Received: fields, copied at begin (read by the first step) */
	char addr[FIELD_MAX], cname[FIELD_MAX], helo[FIELD_MAX];
	char listener[FIELD_MAX], sid[FIELD_MAX], proto[FIELD_MAX];
	char tls[FIELD_MAX];
	char sender[FIELD_MAX], rcpt[FIELD_MAX];
	bool has_cname, has_helo, has_sender, has_rcpt;
	int64_t time;
	/* file state: the step's while it is out */
	int fd;
	int err; /* first errno, 0 = fine */
	bool bol; /* at the beginning of a line */
	bool cr;  /* a CR waits for its LF */
	uint64_t written;
	char name[256];
};

/* A step's write buffer (on the worker's stack). */
#define WBUF_SIZE 65536

struct wbuf {
	struct maildir *md;
	size_t len;
	char buf[WBUF_SIZE];
};

struct maildir {
	struct maildir_config cfg;
	char host[128];	   /* sanitised for file names */
	char by_host[256]; /* for Received: by */
	int tmp_fd, new_fd;
	pid_t pid;

	struct job *jobs;
	uint32_t *free_jobs; /* stack */
	uint32_t nfree;
	uint32_t *done;	     /* completion FIFO of job ids */
	uint32_t done_head, done_count;
	uint32_t steps_out;  /* steps the pool holds */
	uint32_t stalled;    /* jobs that wait for a step (hold, full ring) */

	uint8_t *chunks;
	uint32_t *chunk_len;
	int32_t *chunk_next; /* chunk lists (queued, in a step) */
	uint32_t *free_chunks; /* stack */
	uint32_t nfree_chunks;

	_Atomic bool hold;
	_Atomic uint32_t seq;

	_Atomic uint64_t st_delivered, st_failed, st_aborted, st_fsyncs;
	_Atomic uint64_t st_bytes, st_busy, st_chunk_short;
};

static void stat_add(_Atomic uint64_t *s, uint64_t n)
{
	atomic_fetch_add_explicit(s, n, memory_order_relaxed);
}

void maildir_config_defaults(struct maildir_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_jobs = 64;
	cfg->chunk_size = 65536;
	cfg->max_chunks = 256;
}

/* ------------------------------------------------------------ Received */

static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed",
				   "Thu", "Fri", "Sat"};
static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* RFC 5322 3.3 date-time, in local time with its numeric zone; names
 * spelled here so the process locale cannot change them. */
static void rfc5322_date(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	long off;

	localtime_r(&tt, &tm);
	off = tm.tm_gmtoff / 60;
	mxg_fmt(buf, len, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
		 wday[tm.tm_wday % 7], tm.tm_mday, mon[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

int maildir_format_received(const struct maildir_received *r,
			    const char *by_host, bool crlf, char *buf,
			    size_t len)
{
	const char *eol = crlf ? "\r\n" : "\n";
	char date[64];
	int n = 0, k;

	rfc5322_date(r->time ? r->time : (int64_t)time(NULL), date,
		     sizeof(date));
	if (r->sender) {
		k = mxg_fmt(buf, len, "Return-Path: <%s>%s", r->sender, eol);
		if (k < 0 || (size_t)k >= len)
			return -ENOSPC;
		n = k;
	}
	/* RFC 5321 4.4: "from" (HELO and the TCP-info comment), "by",
	 * "with" (RFC 3848 keyword), "id", "for", then ";" date. */
	k = mxg_fmt(buf + n, len - (size_t)n,
		     "Received: from %s (%s [%s])%s"
		     "%s%s%s"
		     "\tby %s (mxgate, listener %s) with %s id %s%s"
		     "%s%s%s; %s%s",
		     r->helo && r->helo[0] ? r->helo : "unknown",
		     r->client_name && r->client_name[0] ? r->client_name
							 : "unknown",
		     r->client_addr, eol,
		     /* the TLS comment on its own line, as Postfix does */
		     r->tls && r->tls[0] ? "\t" : "",
		     r->tls && r->tls[0] ? r->tls : "",
		     r->tls && r->tls[0] ? eol : "", by_host,
		     r->listener && r->listener[0] ? r->listener : "-",
		     r->protocol && r->protocol[0] ? r->protocol : "ESMTP",
		     r->session_id && r->session_id[0] ? r->session_id : "-",
		     eol, r->recipient ? "\tfor <" : "\t",
		     r->recipient ? r->recipient : "", r->recipient ? ">" : "",
		     date, eol);
	if (k < 0 || (size_t)k >= len - (size_t)n)
		return -ENOSPC;
	return n + k;
}

/* ------------------------------------------------------------ step */

static void job_err(struct job *j, int e)
{
	if (j->err == 0)
		j->err = e ? e : EIO;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void wflush(struct wbuf *w, struct job *j)
{
	if (w->len == 0)
		return;
	if (j->err == 0 && j->fd >= 0) {
		int e = write_all(j->fd, w->buf, w->len);

		if (e)
			job_err(j, e);
		else
			j->written += w->len;
	}
	w->len = 0;
}

static void wput(struct wbuf *w, struct job *j, const char *p, size_t n)
{
	while (n > 0) {
		size_t k = WBUF_SIZE - w->len;

		if (k > n)
			k = n;
		memcpy(w->buf + w->len, p, k);
		w->len += k;
		p += k;
		n -= k;
		if (w->len == WBUF_SIZE)
			wflush(w, j);
	}
}

/* Maildir spec: "/" and ":" may not appear in the host part. */
static void sanitize_host(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 5 < len; in++) {
		if (*in == '/')
			o += (size_t)mxg_fmt(out + o, len - o, "\\057");
		else if (*in == ':')
			o += (size_t)mxg_fmt(out + o, len - o, "\\072");
		else
			out[o++] = *in;
	}
	out[o] = '\0';
}

static void w_begin(struct wbuf *w, struct job *j)
{
	struct maildir *md = w->md;
	struct timeval tv;
	uint32_t q =
		atomic_fetch_add_explicit(&md->seq, 1, memory_order_relaxed);
	struct maildir_received r;
	char hdr[4096];
	int n;

	j->fd = -1;
	j->err = 0;
	j->bol = true;
	j->cr = false;
	j->written = 0;
	gettimeofday(&tv, NULL);
	/* cr.yp.to/proto/maildir.html: time.MusecPpid.host style unique
	 * names; Q (a per-instance counter) and I (the instance) keep
	 * names from several instances of one process apart. */
	mxg_fmt(j->name, sizeof(j->name), "%lld.M%06ldP%dQ%uI%u.%s",
		 (long long)tv.tv_sec, (long)tv.tv_usec, (int)md->pid, q,
		 md->cfg.instance, md->host);
	j->fd = openat(md->tmp_fd, j->name,
		       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		job_err(j, errno);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.client_addr = j->addr;
	r.client_name = j->has_cname ? j->cname : NULL;
	r.helo = j->has_helo ? j->helo : NULL;
	r.listener = j->listener;
	r.session_id = j->sid;
	r.protocol = j->proto;
	r.tls = j->tls[0] ? j->tls : NULL;
	r.sender = j->has_sender ? j->sender : NULL;
	r.recipient = j->has_rcpt ? j->rcpt : NULL;
	r.time = j->time ? j->time : (int64_t)tv.tv_sec;
	n = maildir_format_received(&r, md->by_host, md->cfg.keep_crlf, hdr,
				    sizeof(hdr));
	if (n < 0) {
		job_err(j, ENOSPC);
		return;
	}
	wput(w, j, hdr, (size_t)n);
}

/* Body bytes in SMTP form (CRLF, dot-stuffed) out in file form: RFC 5321
 * 4.5.2 un-stuffing (a leading dot is removed) and CRLF -> LF unless
 * keep_crlf. A bare CR is kept as is. */
static void w_append(struct wbuf *w, struct job *j, const uint8_t *p,
		     size_t n)
{
	bool crlf = w->md->cfg.keep_crlf;
	size_t start = 0;

	if (j->err)
		return;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];

		if (j->bol && ch == '.') {
			wput(w, j, (const char *)p + start, i - start);
			start = i + 1;
			j->bol = false;
			continue;
		}
		j->bol = false;
		if (j->cr) {
			j->cr = false;
			if (ch == '\n') {
				wput(w, j, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
				start = i + 1;
				j->bol = true;
				continue;
			}
			wput(w, j, "\r", 1);
		}
		if (ch == '\r') {
			wput(w, j, (const char *)p + start, i - start);
			start = i + 1;
			j->cr = true;
		} else if (ch == '\n') {
			j->bol = true;
		}
	}
	wput(w, j, (const char *)p + start, n - start);
}

static void w_finish(struct wbuf *w, struct job *j, bool commit)
{
	struct maildir *md = w->md;

	if (commit && j->err == 0) {
		if (j->cr)
			wput(w, j, "\r", 1);
		wflush(w, j);
	}
	w->len = 0;
	if (commit && j->err == 0) {
		if (fsync(j->fd) < 0)
			job_err(j, errno);
		else
			stat_add(&md->st_fsyncs, 1);
	}
	if (j->fd >= 0 && close(j->fd) < 0 && commit)
		job_err(j, errno);
	if (j->fd < 0 && commit)
		job_err(j, EIO); /* never opened: err says why */
	j->fd = -1;
	if (commit && j->err == 0) {
		if (renameat(md->tmp_fd, j->name, md->new_fd, j->name) < 0)
			job_err(j, errno);
		else if (fsync(md->new_fd) < 0)
			/* The file is in new/ but the rename may not be on
			 * disk: report failure (the client retries; a
			 * duplicate beats a loss). */
			job_err(j, errno);
		else
			stat_add(&md->st_fsyncs, 1);
	}
	if (!commit || j->err)
		unlinkat(md->tmp_fd, j->name, 0);
}

/* A worker thread: one step of one message. */
static void step_work(struct worker_job *wj)
{
	struct job *j = (struct job *)wj;
	struct maildir *md = j->md;
	struct wbuf w;

	w.md = md;
	w.len = 0;
	if (j->s_open)
		w_begin(&w, j);
	for (int32_t c = j->s_chunks; c >= 0; c = md->chunk_next[c])
		if (j->s_finish != FIN_ABORT)
			w_append(&w, j,
				 md->chunks + (size_t)c * md->cfg.chunk_size,
				 md->chunk_len[c]);
	if (j->s_finish != FIN_NONE)
		w_finish(&w, j, j->s_finish == FIN_COMMIT);
	else
		wflush(&w, j);
}

/* ------------------------------------------------------------ core side */

static void chunks_free(struct maildir *md, int32_t c)
{
	while (c >= 0) {
		int32_t next = md->chunk_next[c];

		md->free_chunks[md->nfree_chunks++] = (uint32_t)c;
		c = next;
	}
}

static void stall(struct maildir *md, struct job *j)
{
	if (!j->stalled) {
		j->stalled = true;
		md->stalled++;
	}
}

/* The message is over: its completion waits for maildir_poll(). */
static void complete(struct maildir *md, struct job *j, int32_t status)
{
	j->status = status;
	j->state = JOB_CLOSED;
	if (status == 0) {
		stat_add(&md->st_delivered, 1);
		stat_add(&md->st_bytes, j->written);
	} else if (status == -ECANCELED) {
		stat_add(&md->st_aborted, 1);
	} else {
		stat_add(&md->st_failed, 1);
	}
	md->done[(md->done_head + md->done_count++) % md->cfg.max_jobs] =
		(uint32_t)(j - md->jobs);
}

/* Sends the job's next step when it has one and none is out. */
static void step_next(struct maildir *md, struct job *j)
{
	if (j->step_out || j->finish_sent)
		return;
	if (j->finish == FIN_ABORT && j->fd < 0) {
		/* no file (never opened, or the open failed) */
		chunks_free(md, j->q_head);
		j->q_head = j->q_tail = -1;
		j->finish_sent = true;
		complete(md, j, -ECANCELED);
		return;
	}
	if (j->begun && j->q_head < 0 && j->finish == FIN_NONE)
		return; /* nothing to do yet */
	if (atomic_load_explicit(&md->hold, memory_order_acquire)) {
		stall(md, j);
		return;
	}
	if (j->finish == FIN_ABORT) {
		chunks_free(md, j->q_head);
		j->q_head = j->q_tail = -1;
	}
	j->s_open = !j->begun;
	j->s_chunks = j->q_head;
	j->s_finish = j->finish;
	/* Another subsystem may fill the core's ring: try again from
	 * maildir_poll(). */
	if (workers_submit(md->cfg.pool, md->cfg.core, &j->step) < 0) {
		stall(md, j);
		return;
	}
	j->step_out = true;
	md->steps_out++;
	j->begun = true;
	j->q_head = j->q_tail = -1;
	if (j->s_finish != FIN_NONE)
		j->finish_sent = true;
}

/* A step is back on the owning core: its chunks are free again. */
static struct job *step_back(struct worker_job *wj)
{
	struct job *j = (struct job *)wj;

	j->step_out = false;
	j->md->steps_out--;
	chunks_free(j->md, j->s_chunks);
	j->s_chunks = -1;
	return j;
}

/* The owning core: a step came back after its work ran. */
static void step_done(struct worker_job *wj)
{
	struct job *j = step_back(wj);
	struct maildir *md = j->md;

	if (j->s_finish == FIN_COMMIT)
		complete(md, j, -j->err);
	else if (j->s_finish == FIN_ABORT)
		complete(md, j, -ECANCELED);
	else
		step_next(md, j);
}

/* The owning core: a step came back without done(): maildir_abort()
 * cancelled it (its work may or may not have run), or the pool is
 * shutting down. Never submits from here (the pool may be stopping): the
 * abort's last step goes out from maildir_poll(); at shutdown,
 * maildir_destroy() unlinks what is left in tmp/. */
static void step_drop(struct worker_job *wj)
{
	struct job *j = step_back(wj);

	if (j->s_finish != FIN_NONE)
		j->finish_sent = false; /* not finished: maildir_destroy */
	stall(j->md, j);
}

/* ------------------------------------------------------------ setup */

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int open_sub(const char *root, const char *sub, int *fd)
{
	char p[PATH_MAX];
	int rc;

	if ((size_t)mxg_fmt(p, sizeof(p), "%s/%s", root, sub) >= sizeof(p))
		return -ENAMETOOLONG;
	rc = mkdir_p(p);
	if (rc < 0)
		return rc;
	if (fd == NULL)
		return 0;
	*fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

struct maildir *maildir_create(const struct maildir_config *cfg, int *err)
{
	struct maildir *md;
	struct maildir_config k;
	int rc = -ENOMEM;
	char hn[256];

	if (cfg == NULL || cfg->path == NULL || cfg->path[0] == '\0') {
		rc = -EINVAL;
		goto out_err;
	}
	maildir_config_defaults(&k);
	k.path = cfg->path;
	k.hostname = cfg->hostname;
	k.instance = cfg->instance;
	k.max_message_size = cfg->max_message_size;
	k.keep_crlf = cfg->keep_crlf;
	k.pool = cfg->pool;
	k.core = cfg->core;
	if (cfg->max_jobs)
		k.max_jobs = cfg->max_jobs;
	if (cfg->chunk_size)
		k.chunk_size = cfg->chunk_size;
	if (cfg->max_chunks)
		k.max_chunks = cfg->max_chunks;
	if (k.pool == NULL || k.max_jobs > (1u << 20) ||
	    k.max_chunks > (1u << 20) || k.chunk_size < 64) {
		rc = -EINVAL;
		goto out_err;
	}

	md = calloc(1, sizeof(*md));
	if (md == NULL)
		goto out_err;
	md->cfg = k;
	md->tmp_fd = md->new_fd = -1;
	md->pid = getpid();
	if (k.hostname == NULL) {
		if (gethostname(hn, sizeof(hn)) < 0)
			mxg_fmt(hn, sizeof(hn), "localhost");
		hn[sizeof(hn) - 1] = '\0';
	} else {
		mxg_fmt(hn, sizeof(hn), "%s", k.hostname);
	}
	mxg_fmt(md->by_host, sizeof(md->by_host), "%s", hn);
	sanitize_host(hn, md->host, sizeof(md->host));
	md->cfg.hostname = md->by_host;

	rc = mkdir_p(k.path);
	if (rc == 0)
		rc = open_sub(k.path, "tmp", &md->tmp_fd);
	if (rc == 0)
		rc = open_sub(k.path, "new", &md->new_fd);
	if (rc == 0)
		rc = open_sub(k.path, "cur", NULL);
	if (rc < 0)
		goto out_free;
	md->cfg.path = NULL; /* not kept: the caller's string */

	rc = -ENOMEM;
	md->jobs = calloc(k.max_jobs, sizeof(*md->jobs));
	md->free_jobs = calloc(k.max_jobs, sizeof(*md->free_jobs));
	md->chunks = malloc((size_t)k.max_chunks * k.chunk_size);
	md->chunk_len = calloc(k.max_chunks, sizeof(*md->chunk_len));
	md->chunk_next = calloc(k.max_chunks, sizeof(*md->chunk_next));
	md->free_chunks = calloc(k.max_chunks, sizeof(*md->free_chunks));
	md->done = calloc(k.max_jobs, sizeof(*md->done));
	if (!md->jobs || !md->free_jobs || !md->chunks || !md->chunk_len ||
	    !md->chunk_next || !md->free_chunks || !md->done)
		goto out_free;
	for (uint32_t i = 0; i < k.max_chunks; i++)
		md->free_chunks[md->nfree_chunks++] = k.max_chunks - 1 - i;
	for (uint32_t i = 0; i < k.max_jobs; i++) {
		struct job *j = &md->jobs[i];

		j->md = md;
		j->step.work = step_work;
		j->step.done = step_done;
		j->step.drop = step_drop;
		j->fd = -1;
		j->cur_chunk = -1;
		md->free_jobs[md->nfree++] = k.max_jobs - 1 - i;
	}
	return md;
out_free:
	maildir_destroy(md);
out_err:
	if (err)
		*err = rc;
	return NULL;
}

void maildir_destroy(struct maildir *md)
{
	if (md == NULL)
		return;
	if (md->steps_out) {
		/* The pool still holds steps that point here: a caller bug
		 * (destroy the pool first). Leak rather than let a worker
		 * write into freed memory. */
		fprintf(stderr, "maildir: destroyed with %u steps in the "
				"worker pool; not freed\n", md->steps_out);
		return;
	}
	/* Messages never committed, or whose last step never ran, leave
	 * no file behind. */
	for (uint32_t i = 0; md->jobs && i < md->cfg.max_jobs; i++) {
		struct job *j = &md->jobs[i];

		if (j->fd >= 0) {
			close(j->fd);
			unlinkat(md->tmp_fd, j->name, 0);
		}
	}
	free(md->done);
	free(md->free_chunks);
	free(md->chunk_next);
	free(md->chunk_len);
	free(md->chunks);
	free(md->free_jobs);
	free(md->jobs);
	if (md->tmp_fd >= 0)
		close(md->tmp_fd);
	if (md->new_fd >= 0)
		close(md->new_fd);
	free(md);
}

/* ------------------------------------------------------------ data path */

/* Copies a header field, replacing controls so that it stays one line. */
static bool copy_field(char *dst, const char *src)
{
	size_t i = 0;

	if (src == NULL) {
		dst[0] = '\0';
		return false;
	}
	for (; i < FIELD_MAX - 1 && src[i]; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[i] = (ch < 32 || ch == 127) ? '?' : (char)ch;
	}
	dst[i] = '\0';
	return true;
}

static struct job *job_get(struct maildir *md, int job)
{
	if (job < 0 || (uint32_t)job >= md->cfg.max_jobs ||
	    md->jobs[job].state != JOB_OPEN)
		return NULL;
	return &md->jobs[job];
}

int maildir_begin(struct maildir *md, const struct maildir_received *rcv,
		  uint64_t tag)
{
	struct job *j;
	uint32_t idx;

	if (rcv == NULL || rcv->client_addr == NULL)
		return -EINVAL;
	if (md->nfree == 0) {
		stat_add(&md->st_busy, 1);
		return -EAGAIN;
	}
	idx = md->free_jobs[--md->nfree];
	j = &md->jobs[idx];
	j->state = JOB_OPEN;
	j->cur_chunk = -1;
	j->cur_len = 0;
	j->size = 0;
	j->tag = tag;
	j->q_head = j->q_tail = -1;
	j->finish = FIN_NONE;
	j->begun = j->finish_sent = j->step_out = false;
	j->s_chunks = -1;
	j->fd = -1;
	j->err = 0;
	j->written = 0;
	j->name[0] = '\0';
	copy_field(j->addr, rcv->client_addr);
	j->has_cname = copy_field(j->cname, rcv->client_name);
	j->has_helo = copy_field(j->helo, rcv->helo);
	copy_field(j->listener, rcv->listener);
	copy_field(j->sid, rcv->session_id);
	copy_field(j->proto, rcv->protocol);
	copy_field(j->tls, rcv->tls);
	j->has_sender = copy_field(j->sender, rcv->sender);
	j->has_rcpt = copy_field(j->rcpt, rcv->recipient);
	j->time = rcv->time;
	step_next(md, j); /* the open runs while the body arrives */
	return (int)idx;
}

/* The current chunk is full or the body is over: queue it for a step. */
static void chunk_queue(struct maildir *md, struct job *j)
{
	int32_t c = j->cur_chunk;

	md->chunk_len[c] = j->cur_len;
	md->chunk_next[c] = -1;
	if (j->q_tail >= 0)
		md->chunk_next[j->q_tail] = c;
	else
		j->q_head = c;
	j->q_tail = c;
	j->cur_chunk = -1;
}

ssize_t maildir_append(struct maildir *md, int job, const void *buf, size_t len)
{
	struct job *j = job_get(md, job);
	const uint8_t *p = buf;
	size_t taken = 0;

	if (j == NULL)
		return -EINVAL;
	if (md->cfg.max_message_size &&
	    j->size + len > md->cfg.max_message_size)
		return -EFBIG;
	while (taken < len) {
		size_t k;

		if (j->cur_chunk < 0) {
			if (md->nfree_chunks == 0) {
				stat_add(&md->st_chunk_short, 1);
				break;
			}
			j->cur_chunk =
				(int32_t)md->free_chunks[--md->nfree_chunks];
			j->cur_len = 0;
		}
		k = md->cfg.chunk_size - j->cur_len;
		if (k > len - taken)
			k = len - taken;
		memcpy(md->chunks + (size_t)j->cur_chunk * md->cfg.chunk_size +
			       j->cur_len,
		       p + taken, k);
		j->cur_len += (uint32_t)k;
		taken += k;
		if (j->cur_len == md->cfg.chunk_size)
			chunk_queue(md, j);
	}
	j->size += taken;
	step_next(md, j);
	return (ssize_t)taken;
}

int maildir_commit(struct maildir *md, int job)
{
	struct job *j = job_get(md, job);

	if (j == NULL)
		return -EINVAL;
	if (j->cur_chunk >= 0)
		chunk_queue(md, j);
	j->state = JOB_CLOSED;
	j->finish = FIN_COMMIT;
	step_next(md, j);
	return 0;
}

int maildir_abort(struct maildir *md, int job)
{
	struct job *j = job_get(md, job);

	if (j == NULL)
		return -EINVAL;
	if (j->cur_chunk >= 0) {
		md->free_chunks[md->nfree_chunks++] = (uint32_t)j->cur_chunk;
		j->cur_chunk = -1;
	}
	j->state = JOB_CLOSED;
	j->finish = FIN_ABORT;
	if (j->step_out)
		/* its writes are of no use now: the pool hands the step
		 * back through step_drop(), the unlink follows */
		workers_cancel(&j->step);
	else
		step_next(md, j);
	return 0;
}

unsigned maildir_poll(struct maildir *md, struct maildir_completion *out,
		      unsigned n)
{
	unsigned got = 0;

	if (md->stalled &&
	    !atomic_load_explicit(&md->hold, memory_order_acquire))
		for (uint32_t i = 0; i < md->cfg.max_jobs && md->stalled;
		     i++) {
			struct job *j = &md->jobs[i];

			if (!j->stalled)
				continue;
			j->stalled = false;
			md->stalled--;
			step_next(md, j);
		}
	while (got < n && md->done_count > 0) {
		uint32_t v = md->done[md->done_head];
		struct job *j = &md->jobs[v];
		struct maildir_completion *c = &out[got++];

		md->done_head = (md->done_head + 1) % md->cfg.max_jobs;
		md->done_count--;
		c->job = (int32_t)v;
		c->tag = j->tag;
		c->size = j->written;
		c->status = j->status;
		if (c->status == 0)
			mxg_fmt(c->name, sizeof(c->name), "%s", j->name);
		else
			c->name[0] = '\0';
		j->state = JOB_FREE;
		md->free_jobs[md->nfree++] = v;
	}
	return got;
}

bool maildir_busy(const struct maildir *md)
{
	return md->steps_out || md->stalled || md->done_count;
}

void maildir_hold(struct maildir *md, bool hold)
{
	atomic_store_explicit(&md->hold, hold, memory_order_release);
}

void maildir_stats(const struct maildir *md, struct maildir_stats *out)
{
	struct maildir *m = (struct maildir *)md;

	out->delivered = atomic_load(&m->st_delivered);
	out->failed = atomic_load(&m->st_failed);
	out->aborted = atomic_load(&m->st_aborted);
	out->fsyncs = atomic_load(&m->st_fsyncs);
	out->bytes = atomic_load(&m->st_bytes);
	out->busy = atomic_load(&m->st_busy);
	out->chunk_short = atomic_load(&m->st_chunk_short);
}
