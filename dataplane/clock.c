/*
 * clock.c - TSC calibration for clock_us() (see clock.h).
 */
#include "dataplane/clock.h"

uint64_t mxg_tsc_hz = 1;
uint64_t mxg_tsc_base;

void clock_init(void)
{
	mxg_tsc_hz = rte_get_tsc_hz();
	if (mxg_tsc_hz == 0)
		mxg_tsc_hz = 1;
	mxg_tsc_base = rte_get_tsc_cycles();
}
