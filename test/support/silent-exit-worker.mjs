// A worker that exits before it says anything (as one killed or out of memory would).
import process from 'node:process';

process.exit(7);
