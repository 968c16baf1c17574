package workergroup

import "sync"

// slowStartBatch calls fn for indexes 0..count-1 in batches of 1, 2, 4, ...
// run in parallel, and stops after the first batch with an error: when every
// call would fail (a quota, an admission webhook), it makes a handful of
// calls instead of count. It returns how many calls it made and succeeded,
// how many it attempted, and the first error.
func slowStartBatch(count, initialBatchSize int, fn func(i int) error) (successes, attempted int, err error) {
	remaining := count
	for batch := min(remaining, initialBatchSize); batch > 0; batch = min(2*batch, remaining) {
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for i := attempted; i < attempted+batch; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(i); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		attempted += batch
		successes += batch - len(errs)
		if len(errs) > 0 {
			return successes, attempted, <-errs
		}
		remaining -= batch
	}
	return successes, attempted, nil
}
