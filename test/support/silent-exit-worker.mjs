// A worker that exits before it says anything (as one killed or out of memory would).
process.exit(7);
