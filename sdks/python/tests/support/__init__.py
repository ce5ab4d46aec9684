"""What the tests share: a real IdentSphere started from the workspace's binary, and ways to drive it."""
