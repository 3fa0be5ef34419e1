/*
 * fmt.h - a small formatter for the data path: mxg_fmt()/mxg_vfmt() are
 * drop-in replacements for snprintf()/vsnprintf() on the conversions the
 * data path uses, and mxg_sb_* append pieces to a bounded buffer.
 *
 * Why: glibc's printf family costs about 16 % of a core per message in
 * the one-message-per-connection benchmark (docs/benchmarks.md: FILE
 * set-up, __vfprintf_internal, _IO_default_xsputn, strchrnul per call).
 * Here a format is walked once and every piece is copied straight into
 * the caller's buffer.
 *
 * Contract (the same as C11 snprintf, so call sites and their output do
 * not change; tests/unit/dataplane/test_fmt.c compares both byte for
 * byte): at most cap-1 octets are written and the result is always
 * NUL-terminated when cap > 0; the return value is the length the whole
 * output would have had. Conversions: %% c s d i u x X p with the flags
 * '-' and '0', a width and a precision (numbers or '*'), and the length
 * modifiers hh h l ll z j t. Anything else (floating point, %n, '#', '+',
 * ' ') is not supported and is copied through as text: use snprintf off
 * the data path. Locale-free.
 *
 * Header only and libc only, so the SMTP engine and the relay client
 * (which do not link DPDK) can use it. Reentrant; no state.
 */
#ifndef MXG_FMT_H
#define MXG_FMT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A bounded output buffer: len counts every octet offered (like
 * snprintf's return value), at most cap-1 are stored. */
struct mxg_sb {
	char *buf;
	size_t cap;
	size_t len;
};

static inline void mxg_sb_init(struct mxg_sb *b, char *buf, size_t cap)
{
	b->buf = buf;
	b->cap = cap;
	b->len = 0;
	if (cap)
		buf[0] = '\0';
}

/* Appends n octets of p (keeps the buffer NUL-terminated). */
static inline void mxg_sb_mem(struct mxg_sb *b, const void *p, size_t n)
{
	if (b->len + 1 < b->cap) {
		size_t room = b->cap - 1 - b->len;
		size_t k = n < room ? n : room;

		memcpy(b->buf + b->len, p, k);
		b->buf[b->len + k] = '\0';
	}
	b->len += n;
}

static inline void mxg_sb_str(struct mxg_sb *b, const char *s)
{
	mxg_sb_mem(b, s, strlen(s));
}

static inline void mxg_sb_ch(struct mxg_sb *b, char c)
{
	mxg_sb_mem(b, &c, 1);
}

static inline void mxg_sb_fill(struct mxg_sb *b, char c, size_t n)
{
	while (n--)
		mxg_sb_mem(b, &c, 1);
}

/* Appends v in base 10 or 16, at least `digits` digits (zero-filled). */
static inline void mxg_sb_uint(struct mxg_sb *b, uint64_t v, unsigned base,
			       bool upper, size_t digits)
{
	const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char t[24];
	size_t n = 0;

	do {
		t[sizeof(t) - 1 - n++] = dig[v % base];
		v /= base;
	} while (v);
	if (digits > n)
		mxg_sb_fill(b, '0', digits - n);
	mxg_sb_mem(b, t + sizeof(t) - n, n);
}

/* The formatter's cursor: octets go to d while d < end (one octet is
 * kept for the NUL); n counts every octet, stored or not. */
struct mxg_fmt_out {
	char *d, *end;
	size_t n;
};

static inline void mxg_fmt_put(struct mxg_fmt_out *o, char c)
{
	if (o->d < o->end)
		*o->d++ = c;
	o->n++;
}

static inline void mxg_fmt_putn(struct mxg_fmt_out *o, const char *p,
				size_t k)
{
	size_t room = (size_t)(o->end - o->d);
	size_t c = k < room ? k : room;

	memcpy(o->d, p, c);
	o->d += c;
	o->n += k;
}

static inline void mxg_fmt_fill(struct mxg_fmt_out *o, char c, size_t k)
{
	while (k--)
		mxg_fmt_put(o, c);
}

/* One conversion's text with its width applied (left or right, space or
 * zero padded: zeros go after a sign). */
static inline void mxg_fmt_pad(struct mxg_fmt_out *o, const char *sign,
			       size_t sl, const char *body, size_t k,
			       size_t width, bool left, bool zero)
{
	size_t all = sl + k;

	if (width <= all) {
		mxg_fmt_putn(o, sign, sl);
		mxg_fmt_putn(o, body, k);
		return;
	}
	if (!left && !zero)
		mxg_fmt_fill(o, ' ', width - all);
	mxg_fmt_putn(o, sign, sl);
	if (!left && zero)
		mxg_fmt_fill(o, '0', width - all);
	mxg_fmt_putn(o, body, k);
	if (left)
		mxg_fmt_fill(o, ' ', width - all);
}

static inline int mxg_vfmt(char *buf, size_t cap, const char *fmt,
			   va_list ap)
{
	struct mxg_fmt_out o = {buf, cap ? buf + cap - 1 : buf, 0};
	const char *spec = fmt;

	for (;;) {
		const char *pct;
		bool left = false, zero = false, has_prec = false;
		size_t width = 0, prec = 0;
		int lmod = 0; /* -2 hh, -1 h, 0, 1 l, 2 ll/j/z/t */

		/* literal text, octet by octet: pieces are short */
		while (*spec && *spec != '%')
			mxg_fmt_put(&o, *spec++);
		if (!*spec)
			break;
		pct = spec++;
		for (;; spec++) {
			if (*spec == '-')
				left = true;
			else if (*spec == '0')
				zero = true;
			else
				break;
		}
		if (*spec == '*') {
			int w = va_arg(ap, int);

			if (w < 0) {
				left = true;
				w = -w;
			}
			width = (size_t)w;
			spec++;
		} else {
			while (*spec >= '0' && *spec <= '9')
				width = width * 10 + (size_t)(*spec++ - '0');
		}
		if (*spec == '.') {
			has_prec = true;
			spec++;
			if (*spec == '*') {
				int pr = va_arg(ap, int);

				has_prec = pr >= 0;
				prec = pr >= 0 ? (size_t)pr : 0;
				spec++;
			} else {
				while (*spec >= '0' && *spec <= '9')
					prec = prec * 10 +
					       (size_t)(*spec++ - '0');
			}
		}
		if (*spec == 'h') {
			lmod = -1;
			if (*++spec == 'h') {
				lmod = -2;
				spec++;
			}
		} else if (*spec == 'l') {
			lmod = 1;
			if (*++spec == 'l') {
				lmod = 2;
				spec++;
			}
		} else if (*spec == 'z' || *spec == 'j' || *spec == 't') {
			lmod = 2;
			spec++;
		}
		if (left)
			zero = false;
		switch (*spec) {
		case '%':
			mxg_fmt_put(&o, '%');
			break;
		case 'c': {
			char c = (char)va_arg(ap, int);

			mxg_fmt_pad(&o, "", 0, &c, 1, width, left, false);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);

			if (!s)
				s = "(null)";
			if (!has_prec && !width) {
				/* the common case: copy while measuring */
				while (*s)
					mxg_fmt_put(&o, *s++);
				break;
			}
			size_t k;

			if (has_prec) {
				const char *z = memchr(s, '\0', prec);

				k = z ? (size_t)(z - s) : prec;
			} else {
				k = strlen(s);
			}
			mxg_fmt_pad(&o, "", 0, s, k, width, left, false);
			break;
		}
		case 'd':
		case 'i':
		case 'u':
		case 'x':
		case 'X':
		case 'p': {
			char t[24], *e = t + sizeof(t), *q = e;
			const char *sign = "";
			size_t sl = 0;
			unsigned base = (*spec == 'x' || *spec == 'X' ||
					 *spec == 'p') ? 16 : 10;
			const char *dig = *spec == 'X' ? "0123456789ABCDEF"
						       : "0123456789abcdef";
			uint64_t v;

			if (*spec == 'p') {
				v = (uint64_t)(uintptr_t)va_arg(ap, void *);
				sign = "0x";
				sl = 2;
				if (!v) { /* glibc prints "(nil)" */
					mxg_fmt_pad(&o, "", 0, "(nil)", 5,
						    width, left, false);
					break;
				}
			} else if (*spec == 'd' || *spec == 'i') {
				int64_t sv;

				if (lmod == 2)
					sv = va_arg(ap, long long);
				else if (lmod == 1)
					sv = va_arg(ap, long);
				else
					sv = va_arg(ap, int);
				if (lmod == -1)
					sv = (short)sv;
				else if (lmod == -2)
					sv = (signed char)sv;
				if (sv < 0) {
					sign = "-";
					sl = 1;
					v = (uint64_t)0 - (uint64_t)sv;
				} else {
					v = (uint64_t)sv;
				}
			} else {
				if (lmod == 2)
					v = va_arg(ap, unsigned long long);
				else if (lmod == 1)
					v = va_arg(ap, unsigned long);
				else
					v = va_arg(ap, unsigned int);
				if (lmod == -1)
					v = (unsigned short)v;
				else if (lmod == -2)
					v = (unsigned char)v;
			}
			if (!(has_prec && prec == 0 && v == 0)) {
				if (base == 10) {
					do {
						*--q = (char)('0' + v % 10);
						v /= 10;
					} while (v);
				} else {
					do {
						*--q = dig[v & 15];
						v >>= 4;
					} while (v);
				}
			}
			if (has_prec) {
				zero = false; /* C11 7.21.6.1: '0' ignored */
				while ((size_t)(e - q) < prec && q > t)
					*--q = '0';
			}
			mxg_fmt_pad(&o, sign, sl, q, (size_t)(e - q), width,
				    left, zero);
			break;
		}
		default:
			/* Not supported: copy the directive as text. */
			mxg_fmt_putn(&o, pct,
				     (size_t)(spec - pct) + (*spec != 0));
			break;
		}
		if (!*spec)
			break;
		spec++;
	}
	if (cap)
		*o.d = '\0';
	return (int)o.n;
}

static inline int __attribute__((format(printf, 3, 4)))
mxg_fmt(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = mxg_vfmt(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

#endif /* MXG_FMT_H */
