package connector

import "context"

// Controller lets a sink steer the pipeline that feeds it: the SQL merge
// in pause mode stops every consumer before it runs.
type Controller interface {
	// Pause stops every consumer of the pipeline from reading, without
	// waiting for what was already read (it is still written), and returns
	// a function that lets them resume. An exact merge pauses so: a writer
	// may be waiting inside Write for that very merge. Pauses nest as
	// PauseAndDrain's do.
	Pause() (resume func())
	// PauseAndDrain stops every consumer of the pipeline from reading,
	// waits until every record already read has been written and acked (or
	// ctx is done), and returns a function that lets them resume. Pauses
	// nest: consumers resume when every holder has resumed.
	PauseAndDrain(ctx context.Context) (resume func(), err error)
}

// Controllable is implemented by sinks that want a Controller; the engine
// calls SetController once, before the first Write.
type Controllable interface {
	SetController(Controller)
}
