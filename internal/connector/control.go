package connector

import "context"

// Controller lets a sink steer the pipeline that feeds it: the SQL merge
// in pause mode stops every consumer before it runs.
type Controller interface {
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
