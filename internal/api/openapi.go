package api

import (
	_ "embed"
	"net/http"

	"github.com/allot-dev/allot/internal/quota"
)

// openAPI describes the native API. TestOpenAPIMatchesRoutes fails when a
// route is missing from it or it lists a route the server does not have.
//
//go:embed openapi.json
var openAPI []byte

func (a *API) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		Fail(w, r, a.log, quota.Errorf(quota.CodeUnknownParameter, "this route takes no query parameters"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
