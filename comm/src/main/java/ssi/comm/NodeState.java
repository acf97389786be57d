package ssi.comm;

/**
 * What this node believes about a peer. SELF is this node; UP: heard from within suspectAfterMillis;
 * SUSPECT: silent longer than that; DOWN: silent for downAfterMillis, or never heard since start.
 */
public enum NodeState { SELF, UP, SUSPECT, DOWN }
