package ui

// SessionCookie names the session cookie, for the package's external tests.
const SessionCookie = sessionCookie

// LatestEvents is latestEvents, for the external tests.
var LatestEvents = latestEvents

// Assets are the embedded templates and static files.
var Assets = assets
