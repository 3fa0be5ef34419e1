/*
 * clock.h - the dataplane's monotonic clock in microseconds, from the TSC.
 * Initialised once by the main lcore (clock_init) before any dataplane lcore
 * starts; afterwards read-only and safe on every lcore. Never blocks.
 */
#ifndef MXG_CLOCK_H
#define MXG_CLOCK_H

#include <stdint.h>

#include <rte_cycles.h>

extern uint64_t mxg_tsc_hz;
extern uint64_t mxg_tsc_base;

void clock_init(void);

/* Microseconds since clock_init at TSC value tsc (rte_get_tsc_cycles()),
 * for a caller that also wants the cycle count itself. */
static inline uint64_t clock_us_at(uint64_t tsc)
{
	uint64_t c = tsc - mxg_tsc_base;

	/* Split to avoid overflow of c * 1e6 after ~2 hours at 3 GHz. */
	return (c / mxg_tsc_hz) * 1000000ULL +
	       ((c % mxg_tsc_hz) * 1000000ULL) / mxg_tsc_hz;
}

static inline uint64_t clock_us(void)
{
	return clock_us_at(rte_get_tsc_cycles());
}

#endif /* MXG_CLOCK_H */
