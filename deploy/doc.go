// Package deploy holds no code: its tests keep the deployment files at the root of the
// repository true to the code. No container engine runs on the development machines, so
// docker-compose.yml and the Dockerfile are checked by reading them — every PAYSAGA_… setting
// a process needs is set, hostnames and ports name services that listen there, the image
// builds what `make build` builds — and temporal-config/ is checked by running its
// search-attribute script and its dynamic config on a real Temporal dev server.
package deploy
