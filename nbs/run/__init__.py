"""A screening run: its steps defined once, the engines that execute them."""
