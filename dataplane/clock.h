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

static inline uint64_t clock_us(void)
{
	uint64_t c = rte_get_tsc_cycles() - mxg_tsc_base;

	/* Split to avoid overflow of c * 1e6 after ~2 hours at 3 GHz. */
	return (c / mxg_tsc_hz) * 1000000ULL +
	       ((c % mxg_tsc_hz) * 1000000ULL) / mxg_tsc_hz;
}

#endif /* MXG_CLOCK_H */
