/*
 * bounds.h - compile-time bounds shared by the dataplane and the control
 * plane, defined once. Constants only; no state.
 */
#ifndef MXG_BOUNDS_H
#define MXG_BOUNDS_H

/* Dataplane lcores a process runs at most (--cores, stack.cores): sizes
 * the per-core arrays of the snapshot, the push rings and the contexts. */
#define MXG_MAX_CORES 16

#endif /* MXG_BOUNDS_H */
