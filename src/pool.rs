//! The one worker pool: `jobs` scoped threads take items in order from a shared counter, so a
//! slow item never holds up the others, and results come back in input order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Workers to use for `jobs` (0 = one per core), never more than there are items.
pub(crate) fn workers(jobs: usize, items: usize) -> usize {
    let jobs = if jobs == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { jobs };
    jobs.min(items.max(1))
}

/// Runs `work(worker, index, item)` for every item on [`workers`]`(jobs, items.len())`
/// threads and returns the results in the items' order. One thread runs in the caller.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], jobs: usize, work: impl Fn(usize, usize, &T) -> R + Sync) -> Vec<R> {
    let n = workers(jobs, items.len());
    if n <= 1 {
        return items.iter().enumerate().map(|(i, t)| work(0, i, t)).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let run = |worker: usize| loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(item) = items.get(i) else { break };
        let r = work(worker, i, item);
        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
    };
    std::thread::scope(|s| {
        for worker in 1..n {
            let run = &run;
            s.spawn(move || run(worker));
        }
        run(0);
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().map(|r| r.expect("every item ran")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_and_results_keep_their_order() {
        let items: Vec<u32> = (0..500).collect();
        let seen = Mutex::new(Vec::new());
        let out = map(&items, 4, |w, i, x| {
            seen.lock().unwrap().push((w, i));
            x * 2
        });
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let mut idx: Vec<usize> = seen.lock().unwrap().iter().map(|&(_, i)| i).collect();
        idx.sort();
        assert_eq!(idx, (0..500).collect::<Vec<_>>());
        assert!(seen.lock().unwrap().iter().all(|&(w, _)| w < 4));
    }

    #[test]
    fn workers_never_outnumber_the_items() {
        assert_eq!(workers(8, 3), 3);
        assert_eq!(workers(2, 0), 1);
        assert!(workers(0, 1000) >= 1);
        assert_eq!(map(&[] as &[u8], 4, |_, _, _| 1).len(), 0);
    }
}
