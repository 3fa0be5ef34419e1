/*
 * maildir.c - the local Maildir next hop: data-path side (job slots, body
 * chunks, lock-free rings) and the worker threads that do the file I/O.
 *
 * Ownership: job slots, the free-job stack and each job's current chunk
 * belong to the data-path owner; a job's file state (fd, name, error,
 * un-stuffing state) belongs to the one worker the job is pinned to
 * (job id % workers), so commands of one job are handled in order. The
 * rings hand data over with release/acquire ordering; nothing else is
 * shared except the statistics counters (relaxed atomics).
 *
 * Promises: the data-path calls never block, never allocate and never take
 * a lock (sem_post() is a non-blocking futex wake). A completion with
 * status 0 is posted only after fsync(file), rename(tmp -> new) and
 * fsync(new/) all succeeded (the Maildir protocol, cr.yp.to/proto/
 * maildir.html, plus the directory fsync that makes the rename durable).
 * The rings cannot overflow: the command ring holds max_chunks APPENDs plus
 * two commands per job, the completion ring one entry per job.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

/* ------------------------------------------------------------ ring */

/*
 * Bounded multi-producer multi-consumer queue of 64-bit values (Dmitry
 * Vyukov's design): each cell carries a sequence number that says whose
 * turn it is, so producers and consumers only contend on their own index
 * with one CAS. Used single-producer or single-consumer in most places;
 * the generality costs nothing here.
 */
struct ring_cell {
	_Atomic size_t seq;
	uint64_t val;
};

struct ring {
	size_t mask;
	struct ring_cell *cells;
	_Alignas(64) _Atomic size_t enq;
	_Alignas(64) _Atomic size_t deq;
};

static int ring_init(struct ring *r, size_t min)
{
	size_t n = 2;

	while (n < min)
		n <<= 1;
	r->cells = calloc(n, sizeof(*r->cells));
	if (r->cells == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		atomic_init(&r->cells[i].seq, i);
	r->mask = n - 1;
	atomic_init(&r->enq, 0);
	atomic_init(&r->deq, 0);
	return 0;
}

static bool ring_push(struct ring *r, uint64_t v)
{
	size_t pos = atomic_load_explicit(&r->enq, memory_order_relaxed);

	for (;;) {
		struct ring_cell *c = &r->cells[pos & r->mask];
		size_t seq =
			atomic_load_explicit(&c->seq, memory_order_acquire);
		intptr_t d = (intptr_t)seq - (intptr_t)pos;

		if (d == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &r->enq, &pos, pos + 1,
				    memory_order_relaxed,
				    memory_order_relaxed)) {
				c->val = v;
				atomic_store_explicit(&c->seq, pos + 1,
						      memory_order_release);
				return true;
			}
		} else if (d < 0) {
			return false; /* full */
		} else {
			pos = atomic_load_explicit(&r->enq,
						   memory_order_relaxed);
		}
	}
}

static bool ring_pop(struct ring *r, uint64_t *v)
{
	size_t pos = atomic_load_explicit(&r->deq, memory_order_relaxed);

	for (;;) {
		struct ring_cell *c = &r->cells[pos & r->mask];
		size_t seq =
			atomic_load_explicit(&c->seq, memory_order_acquire);
		intptr_t d = (intptr_t)seq - (intptr_t)(pos + 1);

		if (d == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &r->deq, &pos, pos + 1,
				    memory_order_relaxed,
				    memory_order_relaxed)) {
				*v = c->val;
				atomic_store_explicit(&c->seq,
						      pos + r->mask + 1,
						      memory_order_release);
				return true;
			}
		} else if (d < 0) {
			return false; /* empty */
		} else {
			pos = atomic_load_explicit(&r->deq,
						   memory_order_relaxed);
		}
	}
}

/* ------------------------------------------------------------ types */

enum md_cmd {
	MD_BEGIN = 1,
	MD_APPEND,
	MD_COMMIT,
	MD_ABORT,
	MD_STOP,
};

#define CMD(type, job, chunk)                                                  \
	(((uint64_t)(type) << 56) | ((uint64_t)(uint32_t)(job) << 24) |        \
	 (uint64_t)(uint32_t)(chunk))
#define CMD_TYPE(v) ((unsigned)((v) >> 56))
#define CMD_JOB(v) ((int)(((v) >> 24) & 0xffffffu))
#define CMD_CHUNK(v) ((uint32_t)((v)&0xffffffu))

#define FIELD_MAX 256

enum job_state { JOB_FREE = 0, JOB_OPEN, JOB_CLOSED };

struct job {
	/* data path */
	enum job_state state;
	int32_t cur_chunk; /* -1: none */
	uint32_t cur_len;
	uint64_t size; /* body octets appended */
	uint64_t tag;
	/* Received: fields, copied at begin (read by the worker) */
	char addr[FIELD_MAX], cname[FIELD_MAX], helo[FIELD_MAX];
	char listener[FIELD_MAX], sid[FIELD_MAX], proto[FIELD_MAX];
	char tls[FIELD_MAX];
	char sender[FIELD_MAX], rcpt[FIELD_MAX];
	bool has_cname, has_helo, has_sender, has_rcpt;
	int64_t time;
	/* worker */
	int fd;
	int err; /* first errno, 0 = fine */
	bool cancelled;
	bool bol; /* at the beginning of a line */
	bool cr;  /* a CR waits for its LF */
	uint64_t written;
	char name[256];
};

struct worker {
	struct maildir *md;
	pthread_t tid;
	sem_t sem;
	struct ring cmds;
	char *wbuf; /* write buffer */
	size_t wlen;
	bool started;
};

struct maildir {
	struct maildir_config cfg;
	char host[128];	   /* sanitised for file names */
	char by_host[256]; /* for Received: by */
	int tmp_fd, new_fd;
	pid_t pid;

	struct job *jobs;
	uint32_t *free_jobs; /* stack, data path only */
	uint32_t nfree;

	uint8_t *chunks;
	uint32_t *chunk_len;
	struct ring free_chunks;
	struct ring done;

	struct worker *workers;
	_Atomic bool hold;
	_Atomic uint32_t seq;

	_Atomic uint64_t st_delivered, st_failed, st_aborted, st_fsyncs;
	_Atomic uint64_t st_bytes, st_busy, st_chunk_short;
};

#define WBUF_SIZE 65536

static void stat_add(_Atomic uint64_t *s, uint64_t n)
{
	atomic_fetch_add_explicit(s, n, memory_order_relaxed);
}

void maildir_config_defaults(struct maildir_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 1;
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
	snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
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
		k = snprintf(buf, len, "Return-Path: <%s>%s", r->sender, eol);
		if (k < 0 || (size_t)k >= len)
			return -ENOSPC;
		n = k;
	}
	/* RFC 5321 4.4: "from" (HELO and the TCP-info comment), "by",
	 * "with" (RFC 3848 keyword), "id", "for", then ";" date. */
	k = snprintf(buf + n, len - (size_t)n,
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

/* ------------------------------------------------------------ worker */

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

static void wflush(struct worker *w, struct job *j)
{
	if (w->wlen == 0)
		return;
	if (j->err == 0 && j->fd >= 0) {
		int e = write_all(j->fd, w->wbuf, w->wlen);

		if (e)
			job_err(j, e);
		else
			j->written += w->wlen;
	}
	w->wlen = 0;
}

static void wput(struct worker *w, struct job *j, const char *p, size_t n)
{
	while (n > 0) {
		size_t k = WBUF_SIZE - w->wlen;

		if (k > n)
			k = n;
		memcpy(w->wbuf + w->wlen, p, k);
		w->wlen += k;
		p += k;
		n -= k;
		if (w->wlen == WBUF_SIZE)
			wflush(w, j);
	}
}

/* Maildir spec: "/" and ":" may not appear in the host part. */
static void sanitize_host(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 5 < len; in++) {
		if (*in == '/')
			o += (size_t)snprintf(out + o, len - o, "\\057");
		else if (*in == ':')
			o += (size_t)snprintf(out + o, len - o, "\\072");
		else
			out[o++] = *in;
	}
	out[o] = '\0';
}

static void w_begin(struct worker *w, struct job *j)
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
	j->cancelled = false;
	j->bol = true;
	j->cr = false;
	j->written = 0;
	gettimeofday(&tv, NULL);
	/* cr.yp.to/proto/maildir.html: time.MusecPpid.host style unique
	 * names; Q (a per-instance counter) and I (the instance) keep
	 * names from several instances of one process apart. */
	snprintf(j->name, sizeof(j->name), "%lld.M%06ldP%dQ%uI%u.%s",
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
static void w_append(struct worker *w, struct job *j, const uint8_t *p,
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

static void post_done(struct maildir *md, uint32_t job)
{
	/* Cannot fail: one slot per job (see the file comment). */
	while (!ring_push(&md->done, job))
		;
}

static void w_finish(struct worker *w, struct job *j, uint32_t idx, bool commit)
{
	struct maildir *md = w->md;

	if (commit && j->err == 0) {
		if (j->cr)
			wput(w, j, "\r", 1);
		wflush(w, j);
	}
	w->wlen = 0;
	if (commit && j->err == 0) {
		if (fsync(j->fd) < 0)
			job_err(j, errno);
		else
			stat_add(&md->st_fsyncs, 1);
	}
	if (j->fd >= 0 && close(j->fd) < 0 && commit)
		job_err(j, errno);
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
	if (!commit || j->err) {
		unlinkat(md->tmp_fd, j->name, 0);
		if (commit) {
			stat_add(&md->st_failed, 1);
		} else {
			j->cancelled = true;
			stat_add(&md->st_aborted, 1);
		}
	} else {
		stat_add(&md->st_delivered, 1);
		stat_add(&md->st_bytes, j->written);
	}
	post_done(md, idx);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct maildir *md = w->md;

	for (;;) {
		uint64_t v;
		struct job *j;

		if (atomic_load_explicit(&md->hold, memory_order_acquire)) {
			struct timespec ts = {0, 1000000};

			nanosleep(&ts, NULL);
			continue;
		}
		if (!ring_pop(&w->cmds, &v)) {
			while (sem_wait(&w->sem) < 0 && errno == EINTR)
				;
			continue;
		}
		if (CMD_TYPE(v) == MD_STOP)
			break;
		j = &md->jobs[CMD_JOB(v)];
		switch (CMD_TYPE(v)) {
		case MD_BEGIN:
			w_begin(w, j);
			/* The write buffer is per worker, jobs interleave:
			 * it never carries bytes from one command to the
			 * next. */
			wflush(w, j);
			break;
		case MD_APPEND: {
			uint32_t ci = CMD_CHUNK(v);

			w_append(w, j,
				 md->chunks + (size_t)ci * md->cfg.chunk_size,
				 md->chunk_len[ci]);
			wflush(w, j);
			while (!ring_push(&md->free_chunks, ci))
				;
			break;
		}
		case MD_COMMIT:
			w_finish(w, j, (uint32_t)CMD_JOB(v), true);
			break;
		case MD_ABORT:
			w_finish(w, j, (uint32_t)CMD_JOB(v), false);
			break;
		}
	}
	return NULL;
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

	if ((size_t)snprintf(p, sizeof(p), "%s/%s", root, sub) >= sizeof(p))
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
	if (cfg->workers)
		k.workers = cfg->workers;
	if (cfg->max_jobs)
		k.max_jobs = cfg->max_jobs;
	if (cfg->chunk_size)
		k.chunk_size = cfg->chunk_size;
	if (cfg->max_chunks)
		k.max_chunks = cfg->max_chunks;
	if (k.workers > 64 || k.max_jobs > (1u << 20) ||
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
			snprintf(hn, sizeof(hn), "localhost");
		hn[sizeof(hn) - 1] = '\0';
	} else {
		snprintf(hn, sizeof(hn), "%s", k.hostname);
	}
	snprintf(md->by_host, sizeof(md->by_host), "%s", hn);
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
	md->workers = calloc(k.workers, sizeof(*md->workers));
	if (!md->jobs || !md->free_jobs || !md->chunks || !md->chunk_len ||
	    !md->workers)
		goto out_free;
	if (ring_init(&md->free_chunks, k.max_chunks) < 0 ||
	    ring_init(&md->done, k.max_jobs) < 0)
		goto out_free;
	for (uint32_t i = 0; i < k.max_chunks; i++)
		ring_push(&md->free_chunks, i);
	for (uint32_t i = 0; i < k.max_jobs; i++) {
		md->jobs[i].fd = -1;
		md->jobs[i].cur_chunk = -1;
		md->free_jobs[md->nfree++] = k.max_jobs - 1 - i;
	}
	for (uint32_t i = 0; i < k.workers; i++) {
		struct worker *w = &md->workers[i];

		w->md = md;
		w->wbuf = malloc(WBUF_SIZE);
		if (w->wbuf == NULL ||
		    ring_init(&w->cmds,
			      (size_t)k.max_chunks + 2u * k.max_jobs + 2) < 0 ||
		    sem_init(&w->sem, 0, 0) < 0)
			goto out_free;
		if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
			sem_destroy(&w->sem);
			goto out_free;
		}
		w->started = true;
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
	atomic_store(&md->hold, false);
	for (uint32_t i = 0; md->workers && i < md->cfg.workers; i++) {
		struct worker *w = &md->workers[i];

		if (!w->started)
			continue;
		while (!ring_push(&w->cmds, CMD(MD_STOP, 0, 0)))
			sched_yield();
		sem_post(&w->sem);
		pthread_join(w->tid, NULL);
		sem_destroy(&w->sem);
	}
	/* Messages never committed leave no file behind. */
	for (uint32_t i = 0; md->jobs && i < md->cfg.max_jobs; i++) {
		struct job *j = &md->jobs[i];

		if (j->fd >= 0) {
			close(j->fd);
			unlinkat(md->tmp_fd, j->name, 0);
		}
	}
	for (uint32_t i = 0; md->workers && i < md->cfg.workers; i++) {
		free(md->workers[i].wbuf);
		free(md->workers[i].cmds.cells);
	}
	free(md->workers);
	free(md->free_chunks.cells);
	free(md->done.cells);
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

static void send_cmd(struct maildir *md, int job, unsigned type, uint32_t chunk)
{
	struct worker *w = &md->workers[(uint32_t)job % md->cfg.workers];

	/* Sized so that it never fails (file comment); a failure would be
	 * our bug, not the caller's. */
	if (!ring_push(&w->cmds, CMD(type, job, chunk)))
		abort();
	sem_post(&w->sem);
}

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
	send_cmd(md, (int)idx, MD_BEGIN, 0);
	return (int)idx;
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
			uint64_t ci;

			if (!ring_pop(&md->free_chunks, &ci)) {
				stat_add(&md->st_chunk_short, 1);
				break;
			}
			j->cur_chunk = (int32_t)ci;
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
		if (j->cur_len == md->cfg.chunk_size) {
			md->chunk_len[j->cur_chunk] = j->cur_len;
			send_cmd(md, job, MD_APPEND, (uint32_t)j->cur_chunk);
			j->cur_chunk = -1;
		}
	}
	j->size += taken;
	return (ssize_t)taken;
}

int maildir_commit(struct maildir *md, int job)
{
	struct job *j = job_get(md, job);

	if (j == NULL)
		return -EINVAL;
	if (j->cur_chunk >= 0) {
		md->chunk_len[j->cur_chunk] = j->cur_len;
		send_cmd(md, job, MD_APPEND, (uint32_t)j->cur_chunk);
		j->cur_chunk = -1;
	}
	j->state = JOB_CLOSED;
	send_cmd(md, job, MD_COMMIT, 0);
	return 0;
}

int maildir_abort(struct maildir *md, int job)
{
	struct job *j = job_get(md, job);

	if (j == NULL)
		return -EINVAL;
	if (j->cur_chunk >= 0) {
		while (!ring_push(&md->free_chunks, (uint64_t)j->cur_chunk))
			;
		j->cur_chunk = -1;
	}
	j->state = JOB_CLOSED;
	send_cmd(md, job, MD_ABORT, 0);
	return 0;
}

unsigned maildir_poll(struct maildir *md, struct maildir_completion *out,
		      unsigned n)
{
	unsigned got = 0;
	uint64_t v;

	while (got < n && ring_pop(&md->done, &v)) {
		struct job *j = &md->jobs[v];
		struct maildir_completion *c = &out[got++];

		c->job = (int32_t)v;
		c->tag = j->tag;
		c->size = j->written;
		if (j->cancelled)
			c->status = -ECANCELED;
		else
			c->status = -j->err;
		if (c->status == 0)
			snprintf(c->name, sizeof(c->name), "%s", j->name);
		else
			c->name[0] = '\0';
		j->state = JOB_FREE;
		md->free_jobs[md->nfree++] = (uint32_t)v;
	}
	return got;
}

void maildir_hold(struct maildir *md, bool hold)
{
	atomic_store_explicit(&md->hold, hold, memory_order_release);
	if (!hold)
		for (uint32_t i = 0; i < md->cfg.workers; i++)
			sem_post(&md->workers[i].sem);
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
