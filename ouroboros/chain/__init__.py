"""One generation step of a study, framework-free: the time budget, the `family: auto` bake-off, repair at
generation 0 and (issue 21) mitigation at later generations, as one attempt loop."""
