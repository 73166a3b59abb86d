"""Tree-search refinement: tree records (tree.py), BFS (bfs.py), DFS (dfs.py), the batched engine (engine.py)."""
