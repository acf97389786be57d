/* sysv_semmsg sem|msg SECONDS: makes a private SysV semaphore set (two semaphores; it raises the second)
 * or a message queue (one message sent to it), prints "ready PID ID" and removes the object and exits
 * after SECONDS. CheckpointTest checkpoints it meanwhile: the checkpoint must refuse, naming the object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "sem") && strcmp(argv[1], "msg"))) {
        fprintf(stderr, "usage: sysv_semmsg sem|msg SECONDS\n");
        return 2;
    }
    int sem = !strcmp(argv[1], "sem"), id;
    if (sem) {
        id = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
        struct sembuf up = { .sem_num = 1, .sem_op = 1, .sem_flg = 0 };
        if (id < 0 || semop(id, &up, 1) != 0) { perror("sysv_semmsg: semget/semop"); return 1; }
    } else {
        id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
        struct { long type; char text[8]; } m = { 1, "hello" };
        if (id < 0 || msgsnd(id, &m, sizeof m.text, 0) != 0) { perror("sysv_semmsg: msgget/msgsnd"); return 1; }
    }
    printf("ready %d %d\n", (int)getpid(), id);
    fflush(stdout);
    sleep((unsigned)atoi(argv[2]));
    if (sem ? semctl(id, 0, IPC_RMID) : msgctl(id, IPC_RMID, NULL)) { perror("sysv_semmsg: IPC_RMID"); return 1; }
    return 0;
}
