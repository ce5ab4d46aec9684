module github.com/IdentSphere/sdks/go

go 1.19
