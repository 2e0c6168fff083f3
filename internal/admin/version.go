package admin

import (
	"net/http"

	"github.com/sluice-dev/sluice/internal/buildinfo"
)

// version: GET /v1/version, the build of this process (the dashboard's
// footer shows it).
func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, buildinfo.Get())
}
